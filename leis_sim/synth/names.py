"""Name pools by culture, with the spelling and transliteration variants real records show.

Each culture has given names by sex, family names, the countries its people are born in
and a weight (its share of the synthetic population). ``VARIANTS`` groups spellings of
one name that different clerks write for the same person ("Mohammed" / "Muhammad",
"Aleksandr" / "Alexander", "Hernández" / "Hernandez"); the generator uses them for
aliases and for the copy of a person another source holds.

The showcase persons' family names (``sources.synth.showcase``) are kept out of these
pools on purpose; a test checks that no pool name shares their phonetic key.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Culture:
    """A naming tradition: pools of names and the countries of birth that go with it."""

    key: str
    weight: float
    male: tuple[str, ...]
    female: tuple[str, ...]
    surnames: tuple[str, ...]
    countries: tuple[str, ...]
    double_surname_rate: float = 0.0


def _split(text: str) -> tuple[str, ...]:
    return tuple(text.split())


CULTURES: tuple[Culture, ...] = (
    Culture(
        "hispanic",
        0.34,
        _split(
            "José Juan Luis Carlos Jorge Miguel Jesús Francisco Antonio Pedro Manuel Alejandro Ricardo "
            "Fernando Javier Rafael Eduardo Roberto Sergio Mario Raúl Oscar Andrés Diego Héctor Arturo "
            "Enrique Víctor Alberto Gustavo Rubén Salvador Ramón Hugo Pablo Marco Emilio Julio Cristian "
            "Edgar Iván Gerardo Martín Adrián Ernesto Rodrigo Armando Felipe Guillermo Joaquín Ángel Omar"
        ),
        _split(
            "María Guadalupe Ana Rosa Carmen Juana Margarita Verónica Elena Patricia Sofía Lucía Isabel "
            "Gabriela Alejandra Adriana Leticia Teresa Daniela Claudia Mariana Valeria Paola Silvia "
            "Beatriz Yolanda Norma Laura Fernanda Esperanza Diana Andrea Mónica Alicia Cristina "
            "Susana Marisol Lorena Irma Ximena Yesenia Karla Araceli Rocío Luz Estela Josefina Brenda"
        ),
        _split(
            "García Hernández López Martínez González Rodríguez Pérez Sánchez Ramírez Flores Gómez "
            "Díaz Reyes Morales Cruz Ortiz Gutiérrez Chávez Ramos Ruiz Mendoza Álvarez Castillo "
            "Jiménez Moreno Romero Herrera Medina Aguilar Vargas Guzmán Castro Juárez Domínguez "
            "Vázquez Salazar Rojas Contreras Luna Ortega Delgado Soto Estrada Guerrero Sandoval Cortés "
            "Navarro Rivera Torres Mejía Campos Vega Ríos Fuentes Cabrera Ibarra Cervantes Acosta "
            "Carrillo Figueroa Espinoza Valdez Lara Miranda Cárdenas Molina Montoya Padilla Zamora "
            "Trujillo Orozco Velázquez Santiago Pineda Avila Maldonado Bautista Escobar Salinas Solís "
            "Villanueva Rosales Cisneros Arellano Galván Bermúdez Tapia Nava Pacheco Arroyo Benítez "
            "Serrano Peña Calderón Barrera Mercado Osorio Quiroz Velasco Zúñiga"
        ),
        ("MEX", "MEX", "MEX", "GTM", "HND", "SLV", "COL", "DOM", "CUB", "VEN", "ECU", "PER", "USA"),
        double_surname_rate=0.35,
    ),
    Culture(
        "anglo",
        0.22,
        _split(
            "James John Robert Michael William David Richard Joseph Thomas Charles Christopher "
            "Daniel Matthew Anthony Mark Donald Steven Paul Andrew Joshua Kenneth Kevin Brian George "
            "Timothy Ronald Edward Jason Jeffrey Ryan Jacob Gary Nicholas Eric Jonathan Stephen Larry "
            "Justin Scott Brandon Benjamin Samuel Gregory Alexander Patrick Frank Raymond Jack Dennis"
        ),
        _split(
            "Mary Patricia Jennifer Linda Elizabeth Barbara Susan Jessica Sarah Karen Lisa Nancy "
            "Betty Sandra Margaret Ashley Kimberly Emily Donna Michelle Carol Amanda Melissa Deborah "
            "Stephanie Rebecca Sharon Laura Cynthia Kathleen Amy Angela Shirley Brenda Emma Anna "
            "Pamela Nicole Samantha Katherine Christine Rachel Heather Diane Ruth Julie Olivia Megan"
        ),
        _split(
            "Smith Johnson Williams Brown Jones Miller Davis Wilson Anderson Taylor Thomas Moore "
            "Jackson Martin Lee Thompson White Harris Clark Lewis Robinson Walker Young Allen King "
            "Wright Scott Green Baker Adams Nelson Hill Campbell Mitchell Roberts Carter Phillips Evans "
            "Turner Parker Collins Edwards Stewart Morris Murphy Cook Rogers Morgan Peterson Cooper "
            "Reed Bailey Bell Kelly Howard Ward Cox Richardson Wood Watson Brooks Bennett Gray James "
            "Hughes Price Sanders Myers Long Ross Foster Powell Jenkins Perry Russell Sullivan Butler "
            "Barnes Fisher Henderson Coleman Simmons Patterson Jordan Reynolds Hamilton Graham Wallace "
            "Cole West Stone Hayes Gibson Ellis Tucker Porter Hunter Hicks Crawford Boyd Mason Warren "
            "Dixon Burns Gordon Shaw Holmes Rice Robertson Black Daniels Palmer Mills Grant Knight "
            "Ferguson Rose Hawkins Dunn Perkins Hudson Spencer Stephens Pierce Hansen Wagner Olson"
        ),
        ("USA", "USA", "USA", "USA", "CAN", "GBR", "IRL", "AUS"),
    ),
    Culture(
        "arabic",
        0.07,
        _split(
            "Mohammed Ahmed Ali Omar Hassan Hussein Khalid Youssef Ibrahim Mahmoud Mustafa Abdullah "
            "Karim Samir Tarek Walid Nabil Faisal Hamza Bilal Rami Ziad Adel Jamal Nasser Sami Majid "
            "Rashid Fadi Osama Said Anwar Hisham Amr Yasser Khaled Bassam Imad Munir Salim"
        ),
        _split(
            "Fatima Aisha Mariam Layla Nour Zainab Huda Salma Rania Yasmin Hanan Amal Samira Dina "
            "Leila Rana Nadia Reem Soraya Lina Farah Ghada Maha Noura Suha Widad Abeer Rasha Hiba Jamila"
        ),
        _split(
            "Abdullah Hassan Hussein Ali Ibrahim Mahmoud Mansour Nasser Saleh Khalil Haddad Aziz Farouk "
            "Hamdan Jaber Kassem Masri Nassar Qureshi Saad Sayed Shaker Tahir Yousef Zaki Darwish "
            "Habib Karam Khoury Mahfouz Najjar Obeid Rahman Sabbagh Sharif Suleiman Taha Awad Bakr "
            "Fakhoury Ghanem Hijazi Issa Jaradat Khatib Mustafa Odeh Qasim Salem Tamimi Zayed Amin"
        ),
        ("SYR", "IRQ", "EGY", "JOR", "LBN", "YEM", "MAR", "SAU", "SDN"),
    ),
    Culture(
        "south_asian",
        0.07,
        _split(
            "Raj Amit Rahul Sanjay Vikram Arjun Ravi Suresh Anil Deepak Manoj Rajesh Sunil Ashok "
            "Imran Asif Tariq Bilal Faisal Kamran Naveen Pradeep Ramesh Sandeep Vijay Harpreet Gurpreet "
            "Mohammad Abdul Arif Sohail Zubair Rakesh Nitin"
        ),
        _split(
            "Priya Anjali Sunita Pooja Neha Kavita Deepa Lakshmi Meena Rekha Asha Geeta Nisha Rani "
            "Sana Ayesha Farzana Nazia Shabnam Rukhsana Saima Shazia Parveen Harjit Manpreet Simran"
        ),
        _split(
            "Patel Sharma Singh Kumar Shah Gupta Khan Mehta Reddy Rao Joshi Desai Iyer Nair Chopra "
            "Malhotra Verma Agarwal Bhatt Chaudhry Hussain Ahmed Akhtar Malik Butt Chaudhary Mirza "
            "Siddiqui Rana Sandhu Gill Dhillon Grewal Bose Banerjee Chatterjee Mukherjee Das Ghosh"
        ),
        ("IND", "IND", "PAK", "BGD", "NPL", "LKA"),
    ),
    Culture(
        "chinese",
        0.06,
        _split("Wei Jian Hao Jun Ming Lei Tao Yong Jie Qiang Bin Chao Gang Hui Long Peng Feng Kai Xin Yu"),
        _split("Li Na Fang Jing Ying Hong Xiu Mei Yan Lan Hua Juan Ling Xia Ping Qing Yun Zhen Lili Jia"),
        _split(
            "Wang Li Zhang Liu Chen Yang Huang Zhao Wu Zhou Xu Sun Ma Zhu Hu Guo He Lin Gao Luo "
            "Zheng Liang Xie Song Tang Han Feng Deng Cao Peng Zeng Xiao Tian Dong Pan Yuan Cai Jiang"
        ),
        ("CHN", "CHN", "CHN", "TWN", "HKG"),
    ),
    Culture(
        "east_southeast_asian",
        0.07,
        _split(
            "Minh Tuan Hung Duc Quang Thanh Long Nam Hoang Phuc Jose Mark John Rommel Arnel Jun Ji-hoon "
            "Min-jun Sung-min Hyun-woo Dong-hyun Seung-ho"
        ),
        _split(
            "Linh Huong Lan Mai Thu Ngoc Hoa Trang Maricel Rowena Jocelyn Marites Ji-yeon Min-ji "
            "Seo-yeon Eun-ji Hye-jin Soo-jin"
        ),
        _split(
            "Nguyen Tran Le Pham Hoang Phan Vu Dang Bui Do Ho Ngo Duong Ly Santos Reyes Cruz Bautista "
            "Ocampo Garcia Mendoza Villanueva Dela-Cruz Aquino Kim Lee Park Choi Jung Kang Cho Yoon "
            "Jang Lim"
        ),
        ("VNM", "VNM", "PHL", "PHL", "KOR", "KHM", "LAO", "THA"),
    ),
    Culture(
        "slavic",
        0.06,
        _split(
            "Aleksandr Sergei Dmitri Andrei Alexei Ivan Mikhail Nikolai Vladimir Yuri Oleg Pavel "
            "Igor Viktor Maxim Artem Roman Denis Anton Bogdan Taras Mykola Piotr Tomasz Krzysztof"
        ),
        _split(
            "Olga Natalia Tatiana Elena Irina Svetlana Anna Maria Yulia Ekaterina Oksana Daria "
            "Anastasia Ludmila Galina Marina Viktoria Kateryna Agnieszka Katarzyna Magdalena"
        ),
        _split(
            "Ivanov Smirnov Kuznetsov Popov Vasiliev Petrov Sokolov Mikhailov Novikov Fedorov "
            "Morozov Volkov Alekseev Lebedev Semenov Egorov Pavlov Kozlov Stepanov Nikolaev Orlov "
            "Andreev Makarov Zakharov Zaitsev Solovyov Borisov Yakovlev Grigoriev Romanov Shevchenko "
            "Bondarenko Tkachenko Kovalenko Boyko Melnyk Kovalchuk Oliynyk Lysenko Nowak Kowalski "
            "Wisniewski Wojcik Kaminski Lewandowski Zielinski Szymanski"
        ),
        ("RUS", "RUS", "UKR", "UKR", "POL", "BLR", "MDA", "KAZ"),
    ),
    Culture(
        "west_african",
        0.05,
        _split(
            "Chukwuemeka Oluwaseun Ibrahim Kwame Kofi Yaw Emeka Chinedu Tunde Segun Abdoulaye "
            "Mamadou Ousmane Moussa Babajide Obinna Ikenna Kwabena Adebayo Femi"
        ),
        _split(
            "Ngozi Chioma Adaeze Funmilayo Abena Akosua Ama Aminata Fatoumata Mariama Nneka Folake "
            "Yetunde Efua Adwoa Blessing Precious Chidinma"
        ),
        _split(
            "Okafor Adeyemi Okeke Eze Nwosu Ogunleye Balogun Mensah Asante Boateng Owusu Diallo "
            "Traore Keita Coulibaly Ndiaye Sow Bamba Adebayo Olawale Nnamdi Onyekachi Afolabi "
            "Oyelaran Agyeman Appiah Danso Sesay Kamara Bangura"
        ),
        ("NGA", "NGA", "GHA", "SEN", "MLI", "GIN", "SLE", "CIV"),
    ),
    Culture(
        "haitian_french",
        0.03,
        _split("Jean Pierre Jacques Michel Emmanuel Frantz Ricardo Wilner Jonas Stanley Marc-Antoine"),
        _split("Marie Nadège Rose-Marie Fabienne Guerline Mirlande Roseline Sabine Stéphanie Nathalie"),
        _split(
            "Jean-Baptiste Pierre Louis Joseph Charles Desir Etienne Francois Augustin Celestin "
            "Baptiste Dorvil Exantus Fils-Aime Jeune Laguerre Moise Noel Paul Toussaint Vilsaint"
        ),
        ("HTI", "HTI", "HTI", "FRA", "CAN"),
    ),
    Culture(
        "lusophone",
        0.03,
        _split("João Paulo Lucas Gabriel Rafael Thiago Bruno Felipe Gustavo Leonardo Rodrigo Marcos"),
        _split("Ana Juliana Fernanda Camila Beatriz Larissa Aline Bruna Letícia Vanessa Patrícia Renata"),
        _split(
            "Silva Santos Oliveira Souza Lima Pereira Ferreira Costa Carvalho Almeida Ribeiro Gomes "
            "Martins Araújo Barbosa Rocha Dias Nascimento Moreira Cardoso Teixeira Correia Mendes"
        ),
        ("BRA", "BRA", "PRT", "AGO", "CPV"),
    ),
)

# Groups of spellings of one name; the first is the most common form.
VARIANTS: tuple[tuple[str, ...], ...] = (
    ("Mohammed", "Muhammad", "Mohamed", "Mohammad", "Muhammed"),
    ("Ahmed", "Ahmad", "Ahmet"),
    ("Youssef", "Yusuf", "Yousef", "Yousif"),
    ("Hussein", "Husain", "Hussain", "Husayn"),
    ("Hassan", "Hasan"),
    ("Khalid", "Khaled"),
    ("Mahmoud", "Mahmood", "Mahmud"),
    ("Mustafa", "Mostafa", "Moustafa"),
    ("Abdullah", "Abdallah", "Abdulla"),
    ("Osama", "Usama"),
    ("Fatima", "Fatimah", "Fatma"),
    ("Aisha", "Aysha", "Ayesha"),
    ("Layla", "Leila", "Laila"),
    ("Aleksandr", "Alexander", "Aleksander", "Oleksandr"),
    ("Sergei", "Sergey", "Serhiy"),
    ("Dmitri", "Dmitry", "Dmitriy"),
    ("Alexei", "Alexey", "Aleksei"),
    ("Yuri", "Yury", "Iurii"),
    ("Mikhail", "Mykhailo"),
    ("Natalia", "Natalya", "Nataliya"),
    ("Tatiana", "Tatyana", "Tetiana"),
    ("Yulia", "Julia", "Iuliia"),
    ("Ekaterina", "Yekaterina", "Kateryna"),
    ("Vasiliev", "Vasilyev", "Vassiliev"),
    ("Solovyov", "Soloviev"),
    ("Grigoriev", "Grigoryev"),
    ("Alekseev", "Alexeev"),
    ("Fedorov", "Fyodorov"),
    ("Kovalenko", "Kowalenko"),
    ("Shevchenko", "Shevtchenko"),
    ("Katherine", "Catherine", "Kathryn"),
    ("Steven", "Stephen"),
    ("Jon", "John"),
    ("Jeffrey", "Geoffrey"),
    ("Chaudhry", "Chaudhary", "Choudhury"),
    ("Qureshi", "Quraishi"),
    ("Nguyen", "Nguyễn"),
    ("Tran", "Trần"),
    ("Pham", "Phạm"),
    ("Jose", "José"),
    ("Jesus", "Jesús"),
    ("Maria", "María"),
    ("Hernandez", "Hernández"),
    ("Gonzalez", "González", "Gonzales"),
    ("Rodriguez", "Rodríguez"),
    ("Martinez", "Martínez"),
    ("Perez", "Pérez"),
    ("Sanchez", "Sánchez"),
    ("Ramirez", "Ramírez"),
    ("Vazquez", "Vázquez", "Vasquez"),
    ("Jimenez", "Jiménez"),
    ("Alvarez", "Álvarez"),
    ("Gutierrez", "Gutiérrez"),
    ("Velazquez", "Velázquez", "Velasquez"),
    ("Zuniga", "Zúñiga"),
    ("Joao", "João"),
    ("Francois", "François"),
    ("Chukwuemeka", "Chukwuemka"),
    ("Oluwaseun", "Oluseun"),
)

_VARIANT_INDEX: dict[str, tuple[str, ...]] = {}
for _group in VARIANTS:
    for _name in _group:
        _VARIANT_INDEX.setdefault(_name, _group)


def spelling_variants(name: str) -> tuple[str, ...]:
    """Other spellings of ``name`` (not including itself); empty when none are known."""
    group = _VARIANT_INDEX.get(name, ())
    return tuple(v for v in group if v != name)


def all_surnames() -> frozenset[str]:
    """Every family name any culture can produce, variants included."""
    names = {s for c in CULTURES for s in c.surnames}
    names |= {v for s in list(names) for v in spelling_variants(s)}
    return frozenset(names)


def all_given_names() -> frozenset[str]:
    """Every given name any culture can produce, variants included."""
    names = {n for c in CULTURES for n in (*c.male, *c.female)}
    names |= {v for n in list(names) for v in spelling_variants(n)}
    return frozenset(names)
