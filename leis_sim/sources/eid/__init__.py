"""EID simulator parts: the ICE Enforcement Integrated Database's arrest and encounter records."""
