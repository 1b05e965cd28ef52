"""A fleet simulator: the gateway's real decision code (``services.gateway.view`` / ``routing`` /
``placement``) driven at thousands of workers with a simulated clock, simulated workers and several gateways
with their own stale views. ``python -m bench.fleet_sim --help``."""
