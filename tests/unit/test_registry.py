"""The command registry's promises that every later command inherits."""

from __future__ import annotations

import cumulo.api.cloudstack.commands  # noqa: F401  (declares every command)
from cumulo.api.cloudstack.registry import REGISTRY

# State-changing commands without a declared event type, and why.
NO_EVENT = {
    "login": "writes USER.LOGIN itself (there is no caller before it runs)",
    "logout": "writes USER.LOGOUT itself",
    "archiveEvents": "acts on events; CloudStack records none for it",
    "deleteEvents": "acts on events; CloudStack records none for it",
    "archiveAlerts": "acts on alerts; CloudStack's ArchiveAlertsCmd records none",
    "deleteAlerts": "acts on alerts; CloudStack's DeleteAlertsCmd records none",
    "executeWebhookDelivery": "CloudStack's ExecuteWebhookDeliveryCmd is a BaseCmd with no event",
    "deleteWebhookDelivery": "CloudStack's DeleteWebhookDeliveryCmd is a BaseCmd with no event",
    "updateResourceLimit": "CloudStack defines no event type for limits",
    "updateResourceCount": "a recount, not a change of anything a user owns",
    "deleteSSHKeyPair": "CloudStack defines no event type for deleting a key pair",
    "deleteUserData": "CloudStack defines no event type for deleting user data",
    "addHost": "CloudStack's AddHostCmd is a BaseCmd with no event type",
    "updateHost": "CloudStack's UpdateHostCmd is a BaseCmd with no event type",
    "deleteHost": "CloudStack's DeleteHostCmd is a BaseCmd with no event type",
    "createStoragePool": "CloudStack's CreateStoragePoolCmd is a BaseCmd with no event type",
    "updateStoragePool": "CloudStack's UpdateStoragePoolCmd is a BaseCmd with no event type",
    "deleteStoragePool": "CloudStack's DeleteStoragePoolCmd is a BaseCmd with no event type",
    "addImageStore": "CloudStack's AddImageStoreCmd is a BaseCmd with no event type",
    "updateImageStore": "CloudStack's UpdateImageStoreCmd is a BaseCmd with no event type",
    "deleteImageStore": "CloudStack's DeleteImageStoreCmd is a BaseCmd with no event type",
    "addSecondaryStorage": "CloudStack's AddSecondaryStorageCmd is a BaseCmd with no event type",
    "addCluster": "CloudStack defines no cluster event type (AddClusterCmd records none)",
    "updateCluster": "CloudStack defines no cluster event type (UpdateClusterCmd records none)",
    "deleteCluster": "CloudStack defines no cluster event type (DeleteClusterCmd records none)",
    "generateUsageRecords": "CloudStack's GenerateUsageRecordsCmd is a BaseCmd with no event type",
    "createConsoleEndpoint": "CloudStack's CreateConsoleEndpointCmd is a BaseCmd with no event",
    "quotaBalance": "a read (CloudStack's QuotaBalanceCmd records no event)",
    "quotaStatement": "a read (CloudStack's QuotaStatementCmd records no event)",
    "quotaIsEnabled": "a read (CloudStack's QuotaEnabledCmd records no event)",
    "quotaCredits": "CloudStack's QuotaCreditsCmd is a BaseCmd with no event type",
    "quotaUpdate": "CloudStack's QuotaUpdateCmd is a BaseCmd with no event type",
}


def test_every_state_changing_command_declares_its_event() -> None:
    missing = sorted(
        s.name
        for s in REGISTRY.values()
        if (s.writes or s.kind.is_async) and not s.event and s.name not in NO_EVENT
    )
    assert missing == []


def test_every_async_command_has_a_job_body() -> None:
    assert [s.name for s in REGISTRY.values() if s.kind.is_async and s.runner is None] == []


# CloudStack commands whose response key is not <name>response (libcloud special-cases these).
ODD_RESPONSE_NAMES = {"restoreVirtualMachine": "restorevmresponse"}


def test_names_are_unique_ignoring_case_and_responses_follow_cloudstack() -> None:
    names = [s.name.lower() for s in REGISTRY.values()]
    assert len(names) == len(set(names))
    for spec in REGISTRY.values():
        wanted = ODD_RESPONSE_NAMES.get(spec.name, spec.name.lower() + "response")
        assert spec.response_name == wanted
        assert spec.description.strip(), spec.name
