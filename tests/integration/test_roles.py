"""Dynamic roles: custom roles decide what an account may call, through the real server."""

from __future__ import annotations

import uuid
from typing import Any

from cs import CloudStack

from tests.integration.test_users_keys import (
    Person,
    client,
    error_code,
    events_for,
    libcloud_driver,
    user_account,
)
from tests.support.cloud import Cloud


def new_role(cloud: Cloud, rules: list[tuple[str, str]], type: str = "User") -> dict[str, Any]:
    role = cloud.call(
        "createRole", name=f"role-{uuid.uuid4().hex[:10]}", type=type, description="test role"
    )["role"]
    for rule, permission in rules:
        cloud.call("createRolePermission", roleid=role["id"], rule=rule, permission=permission)
    return dict(role)


def rules_of(cloud: Cloud, role_id: str) -> list[tuple[str, str]]:
    perms = cloud.call("listRolePermissions", roleid=role_id).get("rolepermission", [])
    return [(p["rule"], p["permission"]) for p in perms]


def member(cloud: Cloud, role: dict[str, Any]) -> Person:
    return user_account(cloud, roleid=role["id"])


def default_role_id(cloud: Cloud, name: str) -> str:
    roles = cloud.call("listRoles", name=name)["role"]
    assert roles[0]["isdefault"] is True
    return str(roles[0]["id"])


def test_custom_role_allows_only_its_commands(cloud: Cloud) -> None:
    role = new_role(cloud, [("listUsers", "allow"), ("*", "deny")])
    person = member(cloud, role)
    assert client(cloud, person.keys).listUsers(id=person.id)["count"] == 1
    assert error_code(cloud, "listApis", person.keys) == 432
    assert error_code(cloud, "registerUserKeys", person.keys, id=person.id) == 432
    assert error_code(cloud, "updateUser", person.keys, id=person.id, firstname="X") == 432


def test_list_apis_shows_exactly_the_allowed_commands(cloud: Cloud) -> None:
    role = new_role(cloud, [("listUsers", "allow"), ("listApis", "allow"), ("*", "deny")])
    person = member(cloud, role)
    apis = client(cloud, person.keys).listApis()
    assert {a["name"] for a in apis["api"]} == {"listUsers", "listApis"}
    assert apis["count"] == 2


def test_role_type_is_a_ceiling_over_allow_all(cloud: Cloud) -> None:
    role = new_role(cloud, [("*", "allow")])
    person = member(cloud, role)
    assert cloud.call("listUsers", person.keys, id=person.id)["count"] == 1
    for command, params in (
        ("createRole", {"name": f"x-{uuid.uuid4().hex}", "type": "User"}),
        ("listRoles", {}),
        ("lockUser", {"id": person.id}),
        (
            "createUser",
            {
                "account": person.account,
                "username": "u",
                "password": "p",
                "firstname": "f",
                "lastname": "l",
                "email": "e@example.test",
            },
        ),
    ):
        assert error_code(cloud, command, person.keys, **params) == 432, command
    names = {a["name"] for a in cloud.call("listApis", person.keys)["api"]}
    assert "listUsers" in names and "createRole" not in names and "createUser" not in names


def test_read_only_default_role_lists_but_does_not_change(cloud: Cloud) -> None:
    person = user_account(cloud, roleid=default_role_id(cloud, "Read-Only User - Default"))
    assert cloud.call("listUsers", person.keys, id=person.id)["count"] == 1
    keys = cloud.call("getUserKeys", person.keys, id=person.id)["userkeys"]
    assert keys["apikey"] == person.keys.api_key
    assert error_code(cloud, "updateUser", person.keys, id=person.id, firstname="Z") == 432
    assert error_code(cloud, "registerUserKeys", person.keys, id=person.id) == 432
    assert cloud.call("listUsers", id=person.id, listall="true")["user"][0]["firstname"] == "Uma"


def test_default_roles_cannot_be_changed(cloud: Cloud) -> None:
    role_id = default_role_id(cloud, "User")
    before = rules_of(cloud, role_id)
    assert (
        error_code(
            cloud, "createRolePermission", roleid=role_id, rule="listUsers", permission="deny"
        )
        == 531
    )
    assert error_code(cloud, "updateRole", id=role_id, name="Renamed") == 531
    assert error_code(cloud, "deleteRole", id=role_id) == 531
    perm_ids = [
        p["id"] for p in cloud.call("listRolePermissions", roleid=role_id)["rolepermission"]
    ]
    assert error_code(cloud, "deleteRolePermission", id=perm_ids[0]) == 531
    assert (
        error_code(
            cloud, "updateRolePermission", roleid=role_id, ruleid=perm_ids[0], permission="deny"
        )
        == 531
    )
    assert rules_of(cloud, role_id) == before
    assert cloud.call("listRoles", id=role_id)["role"][0]["name"] == "User"


def test_clone_copies_type_and_ordered_rules(cloud: Cloud) -> None:
    source = new_role(cloud, [("list*", "allow"), ("get*", "allow"), ("*", "deny")])
    name = f"clone-{uuid.uuid4().hex[:10]}"
    clone = cloud.call("createRole", name=name, roleid=source["id"])["role"]
    assert (clone["type"], clone["isdefault"], clone["name"]) == ("User", False, name)
    assert rules_of(cloud, clone["id"]) == [("list*", "allow"), ("get*", "allow"), ("*", "deny")]


def test_create_role_needs_exactly_one_of_type_and_roleid(cloud: Cloud) -> None:
    source = new_role(cloud, [])
    name = f"bad-{uuid.uuid4().hex[:10]}"
    assert error_code(cloud, "createRole", name=name) == 431
    assert error_code(cloud, "createRole", name=name, type="User", roleid=source["id"]) == 431
    assert error_code(cloud, "createRole", name=name, type="ResourceAdmin") == 431
    assert error_code(cloud, "createRole", name=source["name"], type="User") == 431
    assert cloud.call("listRoles", name=name) == {}


def test_reordering_rules_changes_what_is_allowed(cloud: Cloud) -> None:
    role = new_role(cloud, [("listUsers", "allow"), ("*", "deny")])
    person = member(cloud, role)
    perms = cloud.call("listRolePermissions", roleid=role["id"])["rolepermission"]
    allow, deny = perms[0]["id"], perms[1]["id"]
    assert error_code(cloud, "updateRolePermission", roleid=role["id"], ruleorder=deny) == 431
    assert cloud.signed("listUsers", person.keys).status_code == 200
    cloud.call("updateRolePermission", roleid=role["id"], ruleorder=f"{deny},{allow}")
    assert rules_of(cloud, role["id"]) == [("*", "deny"), ("listUsers", "allow")]
    assert error_code(cloud, "listUsers", person.keys) == 432


def test_flipping_one_rule(cloud: Cloud) -> None:
    role = new_role(cloud, [("listUsers", "allow"), ("*", "deny")])
    person = member(cloud, role)
    rule_id = cloud.call("listRolePermissions", roleid=role["id"])["rolepermission"][0]["id"]
    body = cloud.call("updateRolePermission", roleid=role["id"], ruleid=rule_id, permission="deny")
    assert body["success"] is True
    assert error_code(cloud, "listUsers", person.keys) == 432
    assert (
        error_code(
            cloud, "updateRolePermission", roleid=role["id"], ruleid=rule_id, permission="maybe"
        )
        == 431
    )
    cloud.call("updateRolePermission", roleid=role["id"], ruleid=rule_id, permission="allow")
    assert cloud.signed("listUsers", person.keys).status_code == 200


def test_bad_rules_are_refused_and_nothing_is_added(cloud: Cloud) -> None:
    role = new_role(cloud, [("listUsers", "allow")])
    for rule, permission, code in (
        ("list Users", "allow", 431),
        ("list-users", "allow", 431),
        ("listVolumes", "perhaps", 431),
        ("listUsers", "deny", 531),  # the rule exists already
    ):
        assert (
            error_code(
                cloud, "createRolePermission", roleid=role["id"], rule=rule, permission=permission
            )
            == code
        )
    assert rules_of(cloud, role["id"]) == [("listUsers", "allow")]


def test_role_permission_response(cloud: Cloud) -> None:
    role = new_role(cloud, [])
    perm = cloud.call(
        "createRolePermission",
        roleid=role["id"],
        rule="list*",
        permission="Allow",
        description="all lists",
    )["rolepermission"]
    assert perm["roleid"] == role["id"] and perm["rolename"] == role["name"]
    assert (perm["rule"], perm["permission"], perm["description"]) == (
        "list*",
        "allow",
        "all lists",
    )


def test_deleting_a_rule_and_a_role(cloud: Cloud) -> None:
    role = new_role(cloud, [("listUsers", "allow"), ("*", "deny")])
    first = cloud.call("listRolePermissions", roleid=role["id"])["rolepermission"][0]["id"]
    assert cloud.call("deleteRolePermission", id=first)["success"] is True
    assert rules_of(cloud, role["id"]) == [("*", "deny")]
    assert cloud.call("deleteRole", id=role["id"])["success"] is True
    assert cloud.call("listRoles", id=role["id"]) == {}
    assert error_code(cloud, "listRolePermissions", roleid=role["id"]) == 431


def test_role_in_use_cannot_be_deleted_or_retyped(cloud: Cloud) -> None:
    role = new_role(cloud, [("*", "allow")])
    member(cloud, role)
    assert error_code(cloud, "deleteRole", id=role["id"]) == 531
    assert error_code(cloud, "updateRole", id=role["id"], type="DomainAdmin") == 531
    assert cloud.call("listRoles", id=role["id"])["role"][0]["type"] == "User"
    renamed = cloud.call("updateRole", id=role["id"], name=role["name"] + "-b", description="d")
    assert (renamed["role"]["name"], renamed["role"]["description"]) == (role["name"] + "-b", "d")


def test_list_roles_filters_and_shape(cloud: Cloud) -> None:
    role = new_role(cloud, [])
    drv = libcloud_driver(cloud, cloud.admin)
    listed = drv._sync_request(command="listRoles", params={"type": "User"})
    assert role["id"] in {r["id"] for r in listed["role"]}
    assert all(r["type"] == "User" for r in listed["role"])
    found = cloud.call("listRoles", keyword=role["name"][5:])["role"]
    assert [r["id"] for r in found] == [role["id"]]
    assert set(found[0]) >= {"id", "name", "type", "description", "isdefault"}
    admins = cloud.call("listRoles", type="Admin")["role"]
    assert {"Root Admin", "Read-Only Admin - Default"} <= {r["name"] for r in admins}


def test_domain_admin_lists_roles_without_admin_ones_and_cannot_create(cloud: Cloud) -> None:
    dadmin = user_account(cloud, accounttype=2)
    cs = CloudStack(endpoint=cloud.endpoint, key=dadmin.keys.api_key, secret=dadmin.keys.secret)
    roles = cs.listRoles()["role"]
    assert roles and all(r["type"] != "Admin" for r in roles)
    root_admin = default_role_id(cloud, "Root Admin")
    assert cloud.call("listRoles", dadmin.keys, id=root_admin) == {}
    name = f"da-{uuid.uuid4().hex[:10]}"
    assert error_code(cloud, "createRole", dadmin.keys, name=name, type="User") == 432
    assert error_code(cloud, "listRolePermissions", dadmin.keys) == 432
    assert cloud.call("listRoles", name=name) == {}


def test_role_changes_are_events(cloud: Cloud) -> None:
    role = new_role(cloud, [("listUsers", "allow")])
    perm = cloud.call("listRolePermissions", roleid=role["id"])["rolepermission"][0]["id"]
    cloud.call("updateRole", id=role["id"], description="changed")
    cloud.call("updateRolePermission", roleid=role["id"], ruleid=perm, permission="deny")
    cloud.call("deleteRolePermission", id=perm)
    cloud.call("deleteRole", id=role["id"])
    on_role = {"ROLE.CREATE", "ROLE.UPDATE", "ROLE.PERMISSION.UPDATE", "ROLE.DELETE"}
    assert events_for(cloud, role["id"], on_role) == on_role
    on_rule = {"ROLE.PERMISSION.CREATE", "ROLE.PERMISSION.DELETE"}
    assert events_for(cloud, perm, on_rule) == on_rule
