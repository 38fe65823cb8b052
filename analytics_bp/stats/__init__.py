"""The Stats API: parse (query), plan, Flux text (flux), reads, metrics, rows, answer; the
engine wires them. See ARCHITECTURE.md, "The path of one Stats API query"."""
