"""The /chat Socket.IO namespace accepts only signed-in users (issue #2 part)."""

from __future__ import annotations

from mediation.extensions import socketio


def test_anonymous_socket_connection_is_refused(app, client):
    sio = socketio.test_client(app, namespace="/chat", flask_test_client=client)
    assert not sio.is_connected("/chat")


def test_signed_in_user_connects_with_the_session_cookie(app, client, auth, make_user):
    user = make_user("consumer")
    assert auth.login(user).status_code in (302, 303)
    sio = socketio.test_client(app, namespace="/chat", flask_test_client=client)
    assert sio.is_connected("/chat")
    sio.disconnect(namespace="/chat")
