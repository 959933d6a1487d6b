"""Create (or reuse) the ztpd test superuser and its two API tokens.

Run by start_netbox.sh with the NetBox venv's python and NETBOX_ROOT set:

    NETBOX_ROOT=... python bootstrap_auth.py TOKENS_FILE

TOKENS_FILE holds `KEY=value` lines written by an earlier run. A token listed
there is reused when it still authenticates against the database; otherwise a
new one is created. The file is rewritten with:

    NETBOX_USER=ztpd-admin
    NETBOX_PASSWORD=<random>
    NETBOX_TOKEN_V1=<40 hex>            header: "Authorization: Token <value>"
    NETBOX_TOKEN_V2=nbt_<key>.<token>   header: "Authorization: Bearer <value>"

Both tokens belong to the superuser and have write_enabled=True.
"""

import os
import secrets
import sys

USERNAME = 'ztpd-admin'
V1_DESCRIPTION = 'ztpd e2e tests (v1)'
V2_DESCRIPTION = 'ztpd e2e tests (v2)'


def read_env(path):
    values = {}
    if os.path.exists(path):
        with open(path, encoding='utf-8') as f:
            for line in f:
                line = line.strip()
                if line and not line.startswith('#') and '=' in line:
                    key, value = line.split('=', 1)
                    values[key] = value
    return values


def main():
    if len(sys.argv) != 2:
        print('usage: bootstrap_auth.py TOKENS_FILE', file=sys.stderr)
        return 2
    path = sys.argv[1]
    old = read_env(path)

    os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'netbox.settings')
    import django
    django.setup()

    from users.constants import TOKEN_PREFIX
    from users.models import Token, User

    password = old.get('NETBOX_PASSWORD') or secrets.token_urlsafe(18)
    user = User.objects.filter(username=USERNAME).first()
    if user is None:
        user = User.objects.create_superuser(USERNAME, 'ztpd-admin@example.net', password)
        print(f'created superuser {USERNAME}')
    else:
        changed = False
        if not (user.is_superuser and user.is_active):
            user.is_superuser = user.is_active = True
            changed = True
        if not user.check_password(password):
            user.set_password(password)
            changed = True
        if changed:
            user.save()

    # v1: "Token <40 chars>". NetBox generates 40 alphanumerics by default; a
    # 40-hex value (the historical v1 format) is accepted and stored as given.
    v1 = old.get('NETBOX_TOKEN_V1', '')
    if not Token.objects.filter(version=1, plaintext=v1, user=user, enabled=True,
                                write_enabled=True).exists() or len(v1) != 40:
        Token.objects.filter(user=user, version=1, description=V1_DESCRIPTION).delete()
        v1 = secrets.token_hex(20)
        token = Token(version=1, user=user, description=V1_DESCRIPTION, write_enabled=True, token=v1)
        token.full_clean()
        token.save()
        print('created v1 token')

    # v2: "Bearer nbt_<key>.<token>"; only an HMAC of <token> is stored, so the
    # plaintext can only come from our own file.
    v2 = old.get('NETBOX_TOKEN_V2', '')
    v2_ok = False
    if v2.startswith(TOKEN_PREFIX) and '.' in v2:
        key, plaintext = v2[len(TOKEN_PREFIX):].split('.', 1)
        existing = Token.objects.filter(version=2, key=key, user=user, enabled=True,
                                        write_enabled=True).first()
        v2_ok = existing is not None and existing.validate(plaintext)
    if not v2_ok:
        Token.objects.filter(user=user, version=2, description=V2_DESCRIPTION).delete()
        token = Token(version=2, user=user, description=V2_DESCRIPTION, write_enabled=True)
        token.full_clean()  # generates key, plaintext and digest (needs API_TOKEN_PEPPERS)
        token.save()
        v2 = f'{TOKEN_PREFIX}{token.key}.{token.token}'
        print('created v2 token')

    tmp = path + '.tmp'
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, 'w', encoding='utf-8') as f:
        f.write(f'NETBOX_USER={USERNAME}\n')
        f.write(f'NETBOX_PASSWORD={password}\n')
        f.write(f'NETBOX_TOKEN_V1={v1}\n')
        f.write(f'NETBOX_TOKEN_V2={v2}\n')
    os.replace(tmp, path)
    return 0


if __name__ == '__main__':
    sys.exit(main())
