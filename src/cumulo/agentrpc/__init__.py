"""The agent protocol: typed messages shared by the management server and the host agent."""
