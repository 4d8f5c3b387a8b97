"""Our CA as the child of a parent run by someone else (RFC 6492) and as a publisher at a repository run by
someone else (RFC 8181).

The desired state names the peers (the RFC 8183 files in Git); what they grant and hold is observed state,
kept here between runs (:mod:`.state`):

- :mod:`.parent` asks the parent what we are entitled to and, when our certificate no longer matches,
  for a new one (list, issue), on a schedule with jitter and back-off;
- :mod:`.effective` turns the desired state into what can be signed under the certificate the parent
  issued: its resources, its URI as the AIA of what our key signs, and the ROAs it no longer covers left
  out, each with a notice;
- :mod:`.repository` makes the repository hold exactly our local copy of the publication point (list,
  then one message of publish and withdraw).
"""
