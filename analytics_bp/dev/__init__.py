"""The local stack, not the product: a throwaway influxd, `make run`, its demo page and demo month,
nginx config rendering and the child-process helper the tests share. Nothing in the collector
imports this package except the demo page, and only when ANALYTICS_DEMO is set."""
