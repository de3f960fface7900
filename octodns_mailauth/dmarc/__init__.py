"""DMARC (RFC 9989; reports RFC 9990/9991).

- `parser.py`: parse and check any DMARC record text, and report URIs.
- `record.py`: the `_dmarc` value from the policy settings.
- `orgdomain.py`: Organizational Domains (offline Public Suffix List, psd=n) and alignment.
- `reports.py`: external report destinations and their authorization records.
- `step.py`: the compile step for the record and its checks.
- `alignment.py`: alignment per sender, the rollout stage, and the tables.
"""
