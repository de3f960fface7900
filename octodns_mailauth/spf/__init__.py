"""SPF (RFC 7208) beyond the record itself (records/spf.py): DNS lookup
accounting (`lookups`), flattening, size splits, address space, the compile
step and the lock refresh."""
