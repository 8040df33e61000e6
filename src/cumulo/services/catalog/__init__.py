"""The catalog: what VMs are built from and with (offerings, OS types, key pairs, user data)."""
