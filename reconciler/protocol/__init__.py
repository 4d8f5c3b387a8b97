"""The protocols a CA speaks with other CAs: RFC 8183 out-of-band setup files, RFC 6492 up-down
provisioning and RFC 8181 publication, each message CMS-signed under a BPKI identity.

Codecs are pure (bytes in, values out, and back); they are tolerant of what real registries send and
precise when they refuse something. Transport and state (replay times, HTTP) live in their own modules.
"""
