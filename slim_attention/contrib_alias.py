"""``install_contrib_alias()`` (issue 2 fills it)."""


def install_contrib_alias():
    raise NotImplementedError("install_contrib_alias is being written (issue 2)")
