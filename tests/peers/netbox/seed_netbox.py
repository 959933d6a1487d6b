#!/usr/bin/env python3
"""Seed a NetBox 4.7 with the objects ztpd's end-to-end tests need, through the
REST API only (Python standard library; any python3 >= 3.8).

    NETBOX_URL=http://127.0.0.1:PORT NETBOX_TOKEN=nbt_xxx.yyy \\
        python3 seed_netbox.py [--devices FILE.json] [--device NAME,SERIAL,MAC,IP[,SITE]]... [--reset]

    python3 seed_netbox.py --env-file STATE_DIR/netbox.env ...

Token: NETBOX_TOKEN (v2 `nbt_<key>.<token>` is sent as "Bearer", anything else
as "Token"), else NETBOX_TOKEN_V2, else NETBOX_TOKEN_V1 (from the environment
or --env-file).

Idempotent: every object is looked up (by slug, name, or device/interface) before
it is created, so a second run creates nothing and prints the same ids. An
existing device keeps whatever status/ztp_state a test gave it, unless --reset
is given, which puts it back to status=planned, ztp_state="pending".

Creates: a tenant, a manufacturer, a device type, a device role, the platform
`cisco_iosxe`, the custom field `ztp_state` (text, on dcim.device), and per
site (one per site code) a site and a config context (ntp_servers,
domain_name, mgmt_vlan, bound to that site); one config template
`ztpd-iosxe-day0` assigned to the platform; and for each device: the device
(status planned), interface GigabitEthernet0/0 (mgmt_only), a MAC address
object assigned to it and set as its primary MAC, and an IPv4 address on it
set as the device's primary_ip4.

Device JSON file: a list of objects {"name", "serial", "mac", "ip", "site"?}
where "ip" has a prefix length (e.g. "192.0.2.11/24") and "site" defaults to
the part of the name before the first "-" (fra2-acc0001 -> fra2).

Prints a JSON summary with the ids on stdout.
"""

import argparse
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request

# From /work/shared/baseline/iosxe/inventory.yaml (serials and hostnames), with
# documentation addresses (RFC 5737 192.0.2.0/24, RFC 7042 00:00:5e:00:53:xx)
# in place of the inventory's management addresses.
DEFAULT_DEVICES = [
    {'name': 'fra2-acc0001', 'serial': 'FOC2101B001', 'mac': '00:00:5e:00:53:01', 'ip': '192.0.2.11/24'},
    {'name': 'lon3-acc0002', 'serial': 'FOC2102C002', 'mac': '00:00:5e:00:53:02', 'ip': '192.0.2.12/24'},
    {'name': 'nyc4-acc0003', 'serial': 'FOC2103D003', 'mac': '00:00:5e:00:53:03', 'ip': '192.0.2.13/24'},
]

TENANT = {'name': 'ztpd-lab', 'slug': 'ztpd-lab'}
MANUFACTURER = {'name': 'Cisco', 'slug': 'cisco'}
DEVICE_TYPE = {'model': 'C9300-48P', 'slug': 'c9300-48p', 'part_number': 'C9300-48P'}
ROLE = {'name': 'Access Switch', 'slug': 'access-switch', 'color': '2196f3'}
PLATFORM = {'name': 'cisco_iosxe', 'slug': 'cisco_iosxe'}
CUSTOM_FIELD = {
    'name': 'ztp_state', 'label': 'ZTP state', 'type': 'text', 'object_types': ['dcim.device'],
    'description': 'Zero-touch provisioning state, written by ztpd',
}
MGMT_INTERFACE = 'GigabitEthernet0/0'
TEMPLATE_NAME = 'ztpd-iosxe-day0'
TEMPLATE_CODE = """\
hostname {{ device.name }}
{% if domain_name %}
ip domain name {{ domain_name }}
{% endif %}
{% for server in ntp_servers | default([]) %}
ntp server {{ server }}
{% endfor %}
{% if device.primary_ip4 %}
interface GigabitEthernet0/0
 ip address {{ device.primary_ip4.address.ip }} {{ device.primary_ip4.address.netmask }}
{% endif %}
end
"""


class ApiError(Exception):
    pass


class NetBox:
    def __init__(self, url, token):
        self.url = url.rstrip('/')
        scheme = 'Bearer' if token.startswith('nbt_') else 'Token'
        self.headers = {
            'Authorization': f'{scheme} {token}',
            'Accept': 'application/json',
            'Content-Type': 'application/json',
        }

    def request(self, method, path, body=None, query=None):
        url = f'{self.url}/api/{path.strip("/")}/'
        if query:
            url += '?' + urllib.parse.urlencode(query, doseq=True)
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method, headers=self.headers)
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as e:
            raise ApiError(f'{method} {url} -> HTTP {e.code}: {e.read().decode(errors="replace")[:2000]}')
        except urllib.error.URLError as e:
            raise ApiError(f'{method} {url} -> {e.reason}')
        return json.loads(raw) if raw else None

    def find(self, path, **query):
        """The single object matching query, or None."""
        query.setdefault('limit', 2)
        res = self.request('GET', path, query=query)
        if res['count'] > 1:
            raise ApiError(f'GET {path} {query}: {res["count"]} matches, expected at most 1')
        return res['results'][0] if res['results'] else None

    def ensure(self, path, lookup, body):
        """Find by lookup (dict of filters) or create with body. Returns (obj, created)."""
        obj = self.find(path, **lookup)
        if obj is not None:
            return obj, False
        return self.request('POST', path, body), True


def load_env_file(path):
    values = {}
    with open(path, encoding='utf-8') as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith('#') and '=' in line:
                key, value = line.split('=', 1)
                values[key] = value
    return values


def parse_device_arg(text):
    parts = text.split(',')
    if len(parts) not in (4, 5):
        raise SystemExit(f'--device wants NAME,SERIAL,MAC,IP[,SITE]; got {text!r}')
    dev = {'name': parts[0], 'serial': parts[1], 'mac': parts[2], 'ip': parts[3]}
    if len(parts) == 5:
        dev['site'] = parts[4]
    return dev


def site_code(dev):
    return dev.get('site') or dev['name'].split('-', 1)[0]


def main():
    ap = argparse.ArgumentParser(description='Seed NetBox for ztpd end-to-end tests.')
    ap.add_argument('--env-file', help='netbox.env written by start_netbox.sh')
    ap.add_argument('--devices', help='JSON file: list of {name, serial, mac, ip, site?}')
    ap.add_argument('--device', action='append', default=[], metavar='NAME,SERIAL,MAC,IP[,SITE]')
    ap.add_argument('--reset', action='store_true',
                    help='put existing devices back to status=planned, ztp_state=pending')
    args = ap.parse_args()

    env = dict(os.environ)
    if args.env_file:
        env = {**load_env_file(args.env_file), **{k: v for k, v in os.environ.items() if k == 'NETBOX_TOKEN'}}
    url = env.get('NETBOX_URL')
    token = env.get('NETBOX_TOKEN') or env.get('NETBOX_TOKEN_V2') or env.get('NETBOX_TOKEN_V1')
    if not url or not token:
        raise SystemExit('NETBOX_URL and NETBOX_TOKEN (or NETBOX_TOKEN_V2/V1, or --env-file) are required')

    devices = []
    if args.devices:
        with open(args.devices, encoding='utf-8') as f:
            devices.extend(json.load(f))
    devices.extend(parse_device_arg(d) for d in args.device)
    if not devices:
        devices = DEFAULT_DEVICES
    for dev in devices:
        for key in ('name', 'serial', 'mac', 'ip'):
            if not dev.get(key):
                raise SystemExit(f'device {dev!r} lacks {key!r}')
        if dev['ip'].startswith('10.'):
            raise SystemExit(f'device {dev["name"]}: use documentation/loopback addresses, not {dev["ip"]}')

    nb = NetBox(url, token)
    created = []

    def ensure(kind, path, lookup, body):
        obj, new = nb.ensure(path, lookup, body)
        if new:
            created.append(f'{kind} {obj.get("display") or obj["id"]}')
        return obj

    tenant = ensure('tenant', 'tenancy/tenants', {'slug': TENANT['slug']}, TENANT)
    manufacturer = ensure('manufacturer', 'dcim/manufacturers', {'slug': MANUFACTURER['slug']}, MANUFACTURER)
    device_type = ensure('device type', 'dcim/device-types', {'slug': DEVICE_TYPE['slug']},
                         {**DEVICE_TYPE, 'manufacturer': manufacturer['id']})
    role = ensure('device role', 'dcim/device-roles', {'slug': ROLE['slug']}, ROLE)
    custom_field = ensure('custom field', 'extras/custom-fields', {'name': CUSTOM_FIELD['name']}, CUSTOM_FIELD)
    template = ensure('config template', 'extras/config-templates', {'name': TEMPLATE_NAME}, {
        'name': TEMPLATE_NAME,
        'description': 'Day-0 configuration for IOS XE access switches (ztpd e2e tests)',
        'template_code': TEMPLATE_CODE,
        'environment_params': {'trim_blocks': True, 'lstrip_blocks': True},
    })
    platform = ensure('platform', 'dcim/platforms', {'slug': PLATFORM['slug']},
                      {**PLATFORM, 'manufacturer': manufacturer['id'], 'config_template': template['id']})
    if (platform.get('config_template') or {}).get('id') != template['id']:
        platform = nb.request('PATCH', f'dcim/platforms/{platform["id"]}', {'config_template': template['id']})

    sites = {}
    contexts = {}
    for code in sorted({site_code(d) for d in devices}):
        site = ensure('site', 'dcim/sites', {'slug': code}, {
            'name': code.upper(), 'slug': code, 'status': 'active', 'tenant': tenant['id'],
        })
        sites[code] = site
        contexts[code] = ensure('config context', 'extras/config-contexts', {'name': f'ztpd-site-{code}'}, {
            'name': f'ztpd-site-{code}',
            'weight': 1000,
            'description': f'Site defaults for {code}',
            'sites': [site['id']],
            'data': {
                'domain_name': f'{code}.example.net',
                'ntp_servers': [f'ntp1.{code}.example.net', f'ntp2.{code}.example.net'],
                'mgmt_vlan': 999,
            },
        })

    summary_devices = []
    for dev in devices:
        code = site_code(dev)
        device = nb.find('dcim/devices', name=dev['name'], site_id=sites[code]['id'], omit='config_context')
        if device is None:
            device = nb.request('POST', 'dcim/devices', {
                'name': dev['name'],
                'serial': dev['serial'],
                'status': 'planned',
                'site': sites[code]['id'],
                'tenant': tenant['id'],
                'role': role['id'],
                'device_type': device_type['id'],
                'platform': platform['id'],
                'custom_fields': {'ztp_state': 'pending'},
            })
            created.append(f'device {device["name"]}')
        elif args.reset:
            device = nb.request('PATCH', f'dcim/devices/{device["id"]}', {
                'status': 'planned', 'custom_fields': {'ztp_state': 'pending'},
            })

        iface = ensure('interface', 'dcim/interfaces', {'device_id': device['id'], 'name': MGMT_INTERFACE}, {
            'device': device['id'], 'name': MGMT_INTERFACE, 'type': '1000base-t', 'mgmt_only': True,
        })

        mac = nb.find('dcim/mac-addresses', mac_address=dev['mac'], interface_id=iface['id'])
        if mac is None:
            mac = nb.request('POST', 'dcim/mac-addresses', {
                'mac_address': dev['mac'],
                'assigned_object_type': 'dcim.interface',
                'assigned_object_id': iface['id'],
            })
            created.append(f'mac address {mac["mac_address"]}')
        if (iface.get('primary_mac_address') or {}).get('id') != mac['id']:
            iface = nb.request('PATCH', f'dcim/interfaces/{iface["id"]}', {'primary_mac_address': mac['id']})

        ip = nb.find('ipam/ip-addresses', address=dev['ip'], interface_id=iface['id'])
        if ip is None:
            ip = nb.request('POST', 'ipam/ip-addresses', {
                'address': dev['ip'],
                'status': 'active',
                'tenant': tenant['id'],
                'assigned_object_type': 'dcim.interface',
                'assigned_object_id': iface['id'],
                'description': f'{dev["name"]} management',
            })
            created.append(f'ip address {ip["address"]}')
        if (device.get('primary_ip4') or {}).get('id') != ip['id']:
            device = nb.request('PATCH', f'dcim/devices/{device["id"]}', {'primary_ip4': ip['id']})

        summary_devices.append({
            'name': device['name'],
            'id': device['id'],
            'serial': device['serial'],
            'status': device['status']['value'],
            'site': code,
            'interface_id': iface['id'],
            'mac_address': mac['mac_address'],
            'mac_address_id': mac['id'],
            'ip_address': ip['address'],
            'ip_address_id': ip['id'],
        })

    summary = {
        'netbox_url': nb.url,
        'tenant_id': tenant['id'],
        'manufacturer_id': manufacturer['id'],
        'device_type_id': device_type['id'],
        'device_role_id': role['id'],
        'platform_id': platform['id'],
        'custom_field_id': custom_field['id'],
        'config_template_id': template['id'],
        'sites': {code: site['id'] for code, site in sites.items()},
        'config_contexts': {code: ctx['id'] for code, ctx in contexts.items()},
        'devices': summary_devices,
        'created': created,
    }
    json.dump(summary, sys.stdout, indent=2)
    print()
    return 0


if __name__ == '__main__':
    try:
        sys.exit(main())
    except ApiError as e:
        print(f'seed_netbox.py: {e}', file=sys.stderr)
        sys.exit(1)
