from servicedesk.roles import is_staff_role, role_of


def servicedesk(request):
    user = getattr(request, "user", None)
    role = role_of(user) if user is not None else None

    def portal_tiles():  # called by the portal's top bar only: the templates call it when they read it
        from servicedesk.workspace import portal_tiles as tiles

        return tiles(user)

    return {"sd_role": role.value if role else None, "sd_is_agent": bool(user and is_staff_role(user)),
            "sd_portal_tiles": portal_tiles}
