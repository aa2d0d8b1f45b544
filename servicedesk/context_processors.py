from servicedesk.roles import is_staff_role, role_of


def servicedesk(request):
    user = getattr(request, "user", None)
    role = role_of(user) if user is not None else None
    return {"sd_role": role.value if role else None, "sd_is_agent": bool(user and is_staff_role(user))}
