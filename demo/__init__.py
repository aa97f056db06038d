"""The demo: the client page and its simulated cloud inference, demo data for `make run`
(environments, flags, ladders, rollouts, a synthetic capability population) and the traffic
simulator. Nothing else imports it; it drives the other apps through their services."""
