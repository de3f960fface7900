"""DMARC (RFC 9989; reports RFC 9990/9991).

- `uri.py`: report URIs (parsing the record and building it: records/dmarc.py).
- `orgdomain.py`: Organizational Domains (offline Public Suffix List, psd=n) and alignment.
- `reports.py`: external report destinations and their authorization records.
- `step.py`: the compile step for the record and its checks.
- `alignment.py`: alignment per sender, the rollout stage, and the tables.
"""
