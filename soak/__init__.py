"""The soak harness (`make soak`, and a short soak in `make test`): many people, real processes, faults.

soak.run starts everything and runs it; soak.people are the virtual people; soak.faults the
faults; soak.ledger what "nothing lost" compares; soak.classify what is expected; soak.bounds
every bound in one place; soak.report the JSON and Markdown; soak.proxy the slow IdP's proxy.
"""
