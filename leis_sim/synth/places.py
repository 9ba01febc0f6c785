"""Places for synthetic addresses and births: US cities with ZIP and area codes, streets, foreign cities.

US cities carry their state, a three-digit ZIP prefix (the generated five-digit ZIP
starts with it) and telephone area codes, so that an address and a phone number
look like they belong together. Foreign cities are keyed by ISO 3166-1 alpha-3
country code and serve as places of birth and foreign addresses.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class UsCity:
    """A US city: state code, ZIP prefix, telephone area codes."""

    name: str
    state: str
    zip_prefix: str
    area_codes: tuple[str, ...]


def _cities(rows: str) -> tuple[UsCity, ...]:
    cities = []
    for row in rows.strip().splitlines():
        name, state, zip_prefix, codes = (part.strip() for part in row.split("|"))
        cities.append(UsCity(name, state, zip_prefix, tuple(codes.split())))
    return tuple(cities)


US_CITIES: tuple[UsCity, ...] = _cities(
    """
    Los Angeles|CA|900|213 323 310
    San Diego|CA|921|619 858
    San Jose|CA|951|408 669
    Fresno|CA|937|559
    Sacramento|CA|958|916 279
    Santa Ana|CA|927|714 657
    Riverside|CA|925|951
    Oakland|CA|946|510 341
    Bakersfield|CA|933|661
    Houston|TX|770|713 281 832
    Dallas|TX|752|214 469 972
    San Antonio|TX|782|210 726
    Austin|TX|787|512 737
    El Paso|TX|799|915
    Laredo|TX|780|956
    McAllen|TX|785|956
    Brownsville|TX|785|956
    Fort Worth|TX|761|817 682
    Phoenix|AZ|850|602 480 623
    Tucson|AZ|857|520
    Yuma|AZ|853|928
    Nogales|AZ|856|520
    Albuquerque|NM|871|505
    Las Cruces|NM|880|575
    Las Vegas|NV|891|702 725
    Denver|CO|802|303 720
    Salt Lake City|UT|841|801 385
    Seattle|WA|981|206
    Tacoma|WA|984|253
    Spokane|WA|992|509
    Portland|OR|972|503 971
    Boise|ID|837|208
    Chicago|IL|606|312 773 872
    Aurora|IL|605|630 331
    Detroit|MI|482|313
    Minneapolis|MN|554|612
    Milwaukee|WI|532|414
    Columbus|OH|432|614 380
    Cleveland|OH|441|216
    Indianapolis|IN|462|317
    Kansas City|MO|641|816
    St. Louis|MO|631|314
    Omaha|NE|681|402 531
    New York|NY|100|212 646 917
    Brooklyn|NY|112|718 347 929
    Queens|NY|113|718 347 929
    Bronx|NY|104|718 347
    Buffalo|NY|142|716
    Newark|NJ|071|973 862
    Jersey City|NJ|073|201 551
    Paterson|NJ|075|973
    Elizabeth|NJ|072|908
    Philadelphia|PA|191|215 267 445
    Pittsburgh|PA|152|412 878
    Boston|MA|021|617 857
    Lawrence|MA|018|978 351
    Providence|RI|029|401
    Hartford|CT|061|860 959
    Baltimore|MD|212|410 443
    Silver Spring|MD|209|301 240
    Washington|DC|200|202
    Arlington|VA|222|703 571
    Richmond|VA|232|804
    Charlotte|NC|282|704 980
    Raleigh|NC|276|919 984
    Atlanta|GA|303|404 470 678
    Savannah|GA|314|912
    Miami|FL|331|305 786
    Orlando|FL|328|407 689
    Tampa|FL|336|813 656
    Jacksonville|FL|322|904
    Hialeah|FL|330|305 786
    Fort Myers|FL|339|239
    Nashville|TN|372|615 629
    Memphis|TN|381|901
    New Orleans|LA|701|504
    Birmingham|AL|352|205 659
    Oklahoma City|OK|731|405
    Little Rock|AR|722|501
    Honolulu|HI|968|808
    Anchorage|AK|995|907
    """
)

STREET_NAMES: tuple[str, ...] = tuple(
    """
    Main|Oak|Pine|Maple|Cedar|Elm|Washington|Lake|Hill|Park|Walnut|Sunset|Lincoln|Jefferson|
    Madison|Franklin|Jackson|Church|Highland|River|Spring|Center|Mill|Forest|Meadow|Ridge|
    Valley|Willow|Cherry|Chestnut|Hickory|Magnolia|Sycamore|Dogwood|Poplar|Laurel|Juniper|Birch|
    Aspen|Cypress|Palm|Mesquite|Saguaro|Alamo|Rio Grande|Guadalupe|San Pedro|Santa Fe|Camino Real|
    Mission|El Camino|La Brea|Vista|Bonita|Alameda|Broadway|Market|Grand|Central|Union|Commerce|
    Industrial|Airport|Harbor|Bay|Ocean|Beach|Canal|Bridge|Railroad|Depot|Station|College|
    University|School|Academy|Garden|Orchard|Vineyard|Prairie|Canyon|Mesa|Desert|Mountain|Summit|
    Crest|Pleasant|Fairview|Glenwood|Greenwood|Lakeview|Riverside|Hillcrest|Woodland|Brookside|
    Kingston|Hamilton|Monroe|Adams|Grant|Sherman|Houston|Austin|Travis|Bowie|Crockett|Lamar|
    Martin Luther King|Cesar Chavez|Kennedy|Roosevelt|Wilson|Truman|Eisenhower|Reagan|Carter|
    First|Second|Third|Fourth|Fifth|Sixth|Seventh|Eighth|Ninth|Tenth|Eleventh|Twelfth
    """.replace("\n", "")
    .replace(" |", "|")
    .split("|")
)
STREET_SUFFIXES: tuple[str, ...] = ("St", "Ave", "Blvd", "Rd", "Dr", "Ln", "Ct", "Way", "Pl", "Ter", "Pkwy")
UNIT_KINDS: tuple[str, ...] = ("Apt", "Unit", "Ste", "#")

# City of birth / foreign residence per country (ISO 3166-1 alpha-3).
FOREIGN_CITIES: dict[str, tuple[str, ...]] = {
    "MEX": (
        "Guadalajara",
        "Monterrey",
        "Puebla",
        "Tijuana",
        "Ciudad Juárez",
        "Oaxaca",
        "Morelia",
        "Culiacán",
    ),
    "GTM": ("Guatemala City", "Quetzaltenango", "Huehuetenango", "Cobán"),
    "HND": ("Tegucigalpa", "San Pedro Sula", "La Ceiba", "Choluteca"),
    "SLV": ("San Salvador", "Santa Ana", "San Miguel", "Soyapango"),
    "COL": ("Bogotá", "Medellín", "Cali", "Barranquilla"),
    "DOM": ("Santo Domingo", "Santiago de los Caballeros", "La Romana"),
    "CUB": ("Havana", "Santiago de Cuba", "Camagüey", "Holguín"),
    "VEN": ("Caracas", "Maracaibo", "Valencia", "Barquisimeto"),
    "ECU": ("Guayaquil", "Quito", "Cuenca"),
    "PER": ("Lima", "Arequipa", "Trujillo"),
    "USA": ("Los Angeles", "Houston", "Chicago", "New York", "Miami", "Phoenix", "San Antonio"),
    "CAN": ("Toronto", "Montreal", "Vancouver", "Calgary"),
    "GBR": ("London", "Manchester", "Birmingham", "Glasgow"),
    "IRL": ("Dublin", "Cork", "Galway"),
    "AUS": ("Sydney", "Melbourne", "Brisbane"),
    "SYR": ("Damascus", "Aleppo", "Homs", "Latakia"),
    "IRQ": ("Baghdad", "Mosul", "Basra", "Erbil"),
    "EGY": ("Cairo", "Alexandria", "Giza", "Asyut"),
    "JOR": ("Amman", "Zarqa", "Irbid"),
    "LBN": ("Beirut", "Tripoli", "Sidon"),
    "YEM": ("Sanaa", "Aden", "Taiz"),
    "MAR": ("Casablanca", "Rabat", "Fez", "Marrakesh"),
    "SAU": ("Riyadh", "Jeddah", "Dammam"),
    "SDN": ("Khartoum", "Omdurman", "Port Sudan"),
    "IND": ("Mumbai", "Delhi", "Bengaluru", "Hyderabad", "Ahmedabad", "Chennai", "Amritsar"),
    "PAK": ("Karachi", "Lahore", "Islamabad", "Faisalabad"),
    "BGD": ("Dhaka", "Chittagong", "Sylhet"),
    "NPL": ("Kathmandu", "Pokhara"),
    "LKA": ("Colombo", "Kandy"),
    "CHN": ("Beijing", "Shanghai", "Guangzhou", "Fuzhou", "Wenzhou", "Shenzhen", "Chengdu"),
    "TWN": ("Taipei", "Kaohsiung", "Taichung"),
    "HKG": ("Hong Kong",),
    "VNM": ("Ho Chi Minh City", "Hanoi", "Da Nang", "Hai Phong"),
    "PHL": ("Manila", "Quezon City", "Cebu City", "Davao City"),
    "KOR": ("Seoul", "Busan", "Incheon", "Daegu"),
    "KHM": ("Phnom Penh", "Battambang"),
    "LAO": ("Vientiane", "Luang Prabang"),
    "THA": ("Bangkok", "Chiang Mai"),
    "RUS": ("Moscow", "Saint Petersburg", "Novosibirsk", "Yekaterinburg", "Kazan"),
    "UKR": ("Kyiv", "Kharkiv", "Odesa", "Lviv", "Dnipro"),
    "POL": ("Warsaw", "Kraków", "Łódź", "Wrocław"),
    "BLR": ("Minsk", "Gomel", "Brest"),
    "MDA": ("Chișinău", "Bălți"),
    "KAZ": ("Almaty", "Astana", "Shymkent"),
    "NGA": ("Lagos", "Abuja", "Kano", "Ibadan", "Enugu", "Port Harcourt"),
    "GHA": ("Accra", "Kumasi", "Tamale"),
    "SEN": ("Dakar", "Thiès", "Saint-Louis"),
    "MLI": ("Bamako", "Sikasso"),
    "GIN": ("Conakry", "Kankan"),
    "SLE": ("Freetown", "Bo"),
    "CIV": ("Abidjan", "Bouaké"),
    "HTI": ("Port-au-Prince", "Cap-Haïtien", "Gonaïves", "Les Cayes"),
    "FRA": ("Paris", "Marseille", "Lyon"),
    "BRA": ("São Paulo", "Rio de Janeiro", "Belo Horizonte", "Governador Valadares"),
    "PRT": ("Lisbon", "Porto", "Braga"),
    "AGO": ("Luanda", "Huambo"),
    "CPV": ("Praia", "Mindelo"),
}

# Foreign postal code shapes by country ("9" is a digit); countries absent use five digits.
FOREIGN_POSTAL_SHAPES: dict[str, str] = {
    "CAN": "A9A 9A9",
    "GBR": "AA9 9AA",
    "BRA": "99999-999",
    "PRT": "9999-999",
    "IND": "999999",
    "CHN": "999999",
    "RUS": "999999",
    "POL": "99-999",
    "NLD": "9999 AA",
}

# Country calling codes for foreign phone numbers (E.164).
CALLING_CODES: dict[str, str] = {
    "MEX": "52", "GTM": "502", "HND": "504", "SLV": "503", "COL": "57", "DOM": "1", "CUB": "53",
    "VEN": "58", "ECU": "593", "PER": "51", "CAN": "1", "GBR": "44", "IRL": "353", "AUS": "61",
    "SYR": "963", "IRQ": "964", "EGY": "20", "JOR": "962", "LBN": "961", "YEM": "967", "MAR": "212",
    "SAU": "966", "SDN": "249", "IND": "91", "PAK": "92", "BGD": "880", "NPL": "977", "LKA": "94",
    "CHN": "86", "TWN": "886", "HKG": "852", "VNM": "84", "PHL": "63", "KOR": "82", "KHM": "855",
    "LAO": "856", "THA": "66", "RUS": "7", "UKR": "380", "POL": "48", "BLR": "375", "MDA": "373",
    "KAZ": "7", "NGA": "234", "GHA": "233", "SEN": "221", "MLI": "223", "GIN": "224", "SLE": "232",
    "CIV": "225", "HTI": "509", "FRA": "33", "BRA": "55", "PRT": "351", "AGO": "244", "CPV": "238",
}  # fmt: skip
