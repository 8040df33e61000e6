"""Guest networking on the cloud side: offerings, networks, addresses, rules, security groups.

Everything here is recorded state. The agent's network layer reads it through
``router_config.render`` (per network) and applies it; nothing here talks to a host.
"""
