"""Socket.IO handlers of the ``/chat`` namespace.

Issue #2 only authenticates the connection (so that ``case_updated`` can reach
the case page later); rooms, messages and presence arrive with the chat issue.
"""

from __future__ import annotations

from flask_login import current_user

from mediation.extensions import socketio


@socketio.on("connect", namespace="/chat")
def connect(auth=None):
    """Refuse connections that are not signed in (session cookie)."""
    if not current_user.is_authenticated:
        return False
    return True
