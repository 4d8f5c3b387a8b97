"""Every object identifier the RPKI profile uses, named once, with the RFC that defines it."""

from cryptography.x509 import ObjectIdentifier

# RFC 3779 §2.2.1 and §3.2.1: resource extensions.
IP_ADDR_BLOCKS = ObjectIdentifier("1.3.6.1.5.5.7.1.7")
AUTONOMOUS_SYS_IDS = ObjectIdentifier("1.3.6.1.5.5.7.1.8")

# RFC 6487 §4.8.9: the one certificate policy of the resource PKI.
RPKI_POLICY = ObjectIdentifier("1.3.6.1.5.5.7.14.2")

# RFC 6487 §4.8.8 (SIA access methods), RFC 8182 §3.2 (rpkiNotify).
CA_REPOSITORY = ObjectIdentifier("1.3.6.1.5.5.7.48.5")
RPKI_MANIFEST = ObjectIdentifier("1.3.6.1.5.5.7.48.10")
SIGNED_OBJECT = ObjectIdentifier("1.3.6.1.5.5.7.48.11")
RPKI_NOTIFY = ObjectIdentifier("1.3.6.1.5.5.7.48.13")

# RFC 6488 §2.1.3: eContentType of each signed object.
CT_ROA = "1.2.840.113549.1.9.16.1.24"  # RFC 9582
CT_MANIFEST = "1.2.840.113549.1.9.16.1.26"  # RFC 9286
CT_ASPA = "1.2.840.113549.1.9.16.1.49"  # draft-ietf-sidrops-aspa-profile

SHA256 = "2.16.840.1.101.3.4.2.1"
