"""DMARC aggregate and SMTP TLS reports as evidence for the policy.

ingest (XML, JSON, gzip, zip, mail messages; `ingest.py`) -> evidence store
(SQLite; `store.py`) -> attribution of each source to a declared sender
(`attribution.py`) -> the rollout gate inside compile (`gate.py`) ->
suggestions as a policy diff (`suggest.py`).  Rendering (text, HTML) is in
`cli/`.

Not to be confused with `dmarc/reports.py`: the RFC 9990 authorization records
that let a receiver send reports to another domain.
"""
