"""DKIM: key pairs (``keys``), the private keystore (``keystore``), rotation
and the compile step; the key record itself: records/dkim.py."""
