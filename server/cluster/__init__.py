"""Scale-out: SFU workers in their own processes, reached from the web processes through Redis.

``run.py serve`` keeps the in-process :class:`server.sfu.Sfu`. ``run.py web`` gives the room hub a
:class:`server.cluster.remote.RemoteSfu` (same calls, :class:`server.cluster.plane.MediaPlane`), and
``run.py sfu --worker-id N`` runs :mod:`server.cluster.worker`. See docs/scale.md.
"""
