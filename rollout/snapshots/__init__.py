"""The snapshot pipeline: compile an environment's flags into the document the client API
evaluates from (compile.py), publish it as a new version once the transaction commits
(publish.py), and hold the latest version of every environment in each API process (store.py).
See docs/snapshot.md."""
