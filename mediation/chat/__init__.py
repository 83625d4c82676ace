"""Real-time mediation chat over Socket.IO (namespace ``/chat``)."""
