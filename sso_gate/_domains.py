"""Email and domain normalization, and the consumer mail domains no organization may claim."""

from __future__ import annotations

import re

from sso_gate.exceptions import ValidationError

__all__ = ["CONSUMER_DOMAINS", "normalize_domain", "email_domain", "normalize_email"]

# Free mail providers: an organization claiming one would capture strangers' logins.
CONSUMER_DOMAINS: frozenset[str] = frozenset(
    """
    gmail.com googlemail.com outlook.com hotmail.com hotmail.co.uk hotmail.fr live.com live.co.uk
    msn.com yahoo.com yahoo.co.uk yahoo.fr yahoo.de yahoo.co.jp ymail.com rocketmail.com
    icloud.com me.com mac.com aol.com aim.com proton.me protonmail.com pm.me gmx.com gmx.de gmx.net
    gmx.at web.de t-online.de mail.com email.com zoho.com zohomail.com yandex.ru yandex.com ya.ru
    mail.ru inbox.ru bk.ru list.ru qq.com 163.com 126.com sina.com yeah.net naver.com daum.net
    hanmail.net fastmail.com fastmail.fm hey.com tutanota.com tuta.io libero.it virgilio.it
    orange.fr wanadoo.fr free.fr laposte.net sfr.fr comcast.net verizon.net att.net sbcglobal.net
    bellsouth.net cox.net charter.net earthlink.net btinternet.com sky.com virginmedia.com
    rediffmail.com seznam.cz wp.pl o2.pl interia.pl onet.pl rambler.ru ukr.net abv.bg
    outlook.de outlook.fr hotmail.de hotmail.it live.fr live.de msn.cn
    """.split()
)

_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)\Z")
# Fast path (``fullmatch``): an already-plain ASCII name, every label valid per ``_LABEL``. For
# such a name IDNA encoding is the identity and every check below passes, so the result is the
# same; anything else takes the full path.
_PLAIN = re.compile(r"(?:(?!-)[a-z0-9-]{1,63}(?<!-)\.)+(?!-)[a-z0-9-]{1,63}(?<!-)")


def normalize_domain(value: str, *, field: str = "domain") -> str:
    """Lowercase, IDNA-encode and validate a DNS domain (at least two labels)."""
    if not isinstance(value, str):
        raise ValidationError("domain must be a string", field=field)
    raw = value.strip().rstrip(".").lower()
    if len(raw) <= 253 and _PLAIN.fullmatch(raw) is not None:
        if raw.rpartition(".")[2].isdigit():
            raise ValidationError(f"{value!r} is an IP address, not a domain", field=field)
        return raw
    if not raw:
        raise ValidationError("domain must not be empty", field=field)
    try:
        ascii_domain = raw.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValidationError(f"{value!r} is not a valid domain name", field=field) from None
    labels = ascii_domain.split(".")
    if len(ascii_domain) > 253 or len(labels) < 2 or not all(_LABEL.match(x) for x in labels):
        raise ValidationError(f"{value!r} is not a valid domain name", field=field)
    if labels[-1].isdigit():
        raise ValidationError(f"{value!r} is an IP address, not a domain", field=field)
    return ascii_domain


def email_domain(email: str) -> str | None:
    """The normalized domain of an email address, or None if it is not one."""
    if not isinstance(email, str) or len(email) > 320:
        return None
    local, sep, domain = email.strip().rpartition("@")
    if not sep or not local or not domain:
        return None
    try:
        return normalize_domain(domain)
    except ValidationError:
        return None


def normalize_email(email: str) -> str:
    """Lowercase the domain part; keep the local part as given (RFC 5321 §2.4)."""
    local, _, domain = email.strip().rpartition("@")
    return f"{local}@{domain.lower()}"
