"""TECS simulator parts: CBP/ICE subject records with roles, status and restrictions."""
