"""Mail threading helpers shared by the outbound notifications and the email channel.

Placeholder from the parsing branch: only the reply marker, with the exact value of the issue 12 interface
(the kernel branch owns this module and brings the rest; the integrator reconciles the two).
"""

REPLY_MARKER = "## Reply above this line ##"
