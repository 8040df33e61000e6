// Resource pages described as data: which list API fills the table, which columns show,
// how to create one and which actions a row offers (each an API call, maybe with a form).
// ResourcePage.vue renders any of them, so a new page is a few lines here, and every page
// behaves the same: paging, search, sorting, errors with the API's errortext, progress for
// async jobs.
//
// field: { name, label, type: text|number|password|select|checkbox|textarea|file, required,
//          source: { api, params, value, label } for selects, base64: encode the text }
// needs: more APIs the role must have to see the page (operator pages over lists users may
//        call too, such as listZones, need an operator API as well)
// action: { label, api, idParam (default "id"), when(row), fields, danger, confirm, params(row),
//           show: "result field to show once (a private key)", link: "result field offered as
//           a download link" }
// upload: a create whose api is getUploadParamsFor*: its "file" field is POSTed to the answer's
//         postURL with progress (upload: true)

const zoneSelect = { name: "zoneid", label: "Zone", type: "select", required: true,
  source: { api: "listZones", params: { available: "true" } } };
const fileField = { name: "file", label: "File", type: "file", required: true };
const vmSelect = (name = "virtualmachineid") => ({ name, label: "Instance", type: "select",
  required: true, source: { api: "listVirtualMachines", params: { listall: "true" },
    label: (r) => r.displayname || r.name } });

export const resources = [
  // ---- for users ------------------------------------------------------------------------
  {
    kind: "volumes", title: "Volumes", list: "listVolumes",
    columns: ["name", "state", "type", "sizegb", "vmname", "zonename", "account"],
    labels: { sizegb: "Size (GiB)", vmname: "Instance" },
    decorate: (r) => ({ ...r, sizegb: r.size ? (r.size / 2 ** 30).toFixed(1) : "" }),
    create: { api: "createVolume", label: "Create volume", fields: [
      { name: "name", label: "Name", required: true }, zoneSelect,
      { name: "diskofferingid", label: "Disk offering", type: "select", required: true,
        source: { api: "listDiskOfferings" } },
      { name: "size", label: "Size (GiB, custom offerings)", type: "number" },
    ] },
    upload: { api: "getUploadParamsForVolume", label: "Upload from this computer", upload: true,
      fields: [{ name: "name", label: "Name", required: true }, zoneSelect,
        { name: "format", label: "Format", type: "select", required: true, options: ["QCOW2", "RAW"] },
        fileField] },
    actions: [
      { label: "Attach", api: "attachVolume", when: (r) => !r.virtualmachineid && r.type === "DATADISK",
        fields: [vmSelect()] },
      { label: "Detach", api: "detachVolume", when: (r) => r.virtualmachineid && r.type === "DATADISK" },
      { label: "Resize", api: "resizeVolume", fields: [
        { name: "size", label: "New size (GiB)", type: "number", required: true },
        { name: "shrinkok", label: "Allow shrinking", type: "checkbox" }] },
      { label: "Snapshot", api: "createSnapshot", idParam: "volumeid", when: (r) => r.state === "Ready" },
      { label: "Download", api: "extractVolume", link: "url",
        params: (r) => ({ zoneid: r.zoneid, mode: "HTTP_DOWNLOAD" }),
        when: (r) => r.state === "Ready" && (!r.virtualmachineid || r.vmstate === "Stopped") },
      { label: "Delete", api: "deleteVolume", danger: true, confirm: true,
        when: (r) => !r.virtualmachineid },
    ],
  },
  {
    kind: "snapshots", title: "Snapshots", list: "listSnapshots",
    columns: ["name", "state", "volumename", "volumetype", "created", "account"],
    actions: [
      { label: "Revert", api: "revertSnapshot", confirm: true, when: (r) => r.state === "BackedUp" },
      { label: "Create volume", api: "createVolume", idParam: "snapshotid",
        fields: [{ name: "name", label: "Name", required: true }], when: (r) => r.state === "BackedUp" },
      { label: "Create template", api: "createTemplate", idParam: "snapshotid",
        when: (r) => r.state === "BackedUp", fields: [
          { name: "name", label: "Name", required: true },
          { name: "displaytext", label: "Description", required: true },
          { name: "ostypeid", label: "OS type", type: "select", required: true,
            source: { api: "listOsTypes", label: (r) => r.description } }] },
      { label: "Delete", api: "deleteSnapshot", danger: true, confirm: true },
    ],
  },
  {
    kind: "networks", title: "Networks", list: "listNetworks",
    columns: ["name", "state", "type", "cidr", "zonename", "account"],
    create: { api: "createNetwork", label: "Create network", fields: [
      { name: "name", label: "Name", required: true },
      { name: "displaytext", label: "Description" }, zoneSelect,
      { name: "networkofferingid", label: "Network offering", type: "select", required: true,
        source: { api: "listNetworkOfferings", params: { guestiptype: "Isolated", state: "Enabled" } } },
    ] },
    actions: [
      { label: "Acquire IP", api: "associateIpAddress", idParam: "networkid", when: (r) => r.type === "Isolated" },
      { label: "Restart", api: "restartNetwork", confirm: true,
        fields: [{ name: "cleanup", label: "Clean up (rebuild the router)", type: "checkbox" }] },
      { label: "Delete", api: "deleteNetwork", danger: true, confirm: true },
    ],
  },
  {
    kind: "publicips", title: "Public IPs", list: "listPublicIpAddresses",
    params: { allocatedonly: "true" },
    columns: ["ipaddress", "state", "issourcenat", "isstaticnat", "virtualmachinename", "associatednetworkname", "zonename"],
    labels: { issourcenat: "Source NAT", isstaticnat: "Static NAT", virtualmachinename: "Instance",
      associatednetworkname: "Network" },
    rowName: (r) => r.ipaddress,
    actions: [
      { label: "Port forwarding", api: "createPortForwardingRule", idParam: "ipaddressid", fields: [
          { name: "protocol", label: "Protocol", type: "select", required: true,
            options: ["tcp", "udp"] },
          { name: "publicport", label: "Public port", type: "number", required: true },
          { name: "privateport", label: "Private port", type: "number", required: true },
          vmSelect()] },
      { label: "Firewall rule", api: "createFirewallRule", idParam: "ipaddressid", fields: [
        { name: "protocol", label: "Protocol", type: "select", required: true, options: ["tcp", "udp", "icmp"] },
        { name: "startport", label: "Start port", type: "number" },
        { name: "endport", label: "End port", type: "number" },
        { name: "cidrlist", label: "Source CIDRs", placeholder: "0.0.0.0/0" }] },
      { label: "Static NAT", api: "enableStaticNat", idParam: "ipaddressid",
        when: (r) => !r.issourcenat && !r.isstaticnat, fields: [vmSelect()] },
      { label: "Disable static NAT", api: "disableStaticNat", idParam: "ipaddressid",
        when: (r) => r.isstaticnat },
      { label: "Release", api: "disassociateIpAddress", danger: true, confirm: true,
        when: (r) => !r.issourcenat },
    ],
  },
  {
    kind: "portforwarding", title: "Port forwarding", list: "listPortForwardingRules",
    columns: ["ipaddress", "protocol", "publicport", "privateport", "virtualmachinename", "state"],
    labels: { virtualmachinename: "Instance" },
    rowName: (r) => `${r.ipaddress}:${r.publicport}`,
    actions: [{ label: "Delete", api: "deletePortForwardingRule", danger: true, confirm: true }],
  },
  {
    kind: "firewall", title: "Firewall rules", list: "listFirewallRules",
    columns: ["ipaddress", "protocol", "startport", "endport", "cidrlist", "state"],
    rowName: (r) => `${r.ipaddress}:${r.protocol}:${r.startport ?? ""}`,
    actions: [{ label: "Delete", api: "deleteFirewallRule", danger: true, confirm: true }],
  },
  {
    kind: "loadbalancers", title: "Load balancers", list: "listLoadBalancerRules",
    columns: ["name", "publicip", "publicport", "privateport", "algorithm", "state"],
    create: { api: "createLoadBalancerRule", label: "Create load balancer", fields: [
      { name: "name", label: "Name", required: true },
      { name: "publicipid", label: "Public IP", type: "select", required: true,
        source: { api: "listPublicIpAddresses", params: { allocatedonly: "true" }, label: (r) => r.ipaddress } },
      { name: "publicport", label: "Public port", type: "number", required: true },
      { name: "privateport", label: "Private port", type: "number", required: true },
      { name: "algorithm", label: "Algorithm", type: "select", required: true,
        options: ["roundrobin", "leastconn", "source"] }] },
    actions: [
      { label: "Add instance", api: "assignToLoadBalancerRule", fields: [vmSelect("virtualmachineids")] },
      { label: "Delete", api: "deleteLoadBalancerRule", danger: true, confirm: true },
    ],
  },
  {
    kind: "securitygroups", title: "Security groups", list: "listSecurityGroups",
    columns: ["name", "description", "account"],
    create: { api: "createSecurityGroup", label: "Create security group", fields: [
      { name: "name", label: "Name", required: true }, { name: "description", label: "Description" }] },
    actions: [
      { label: "Allow ingress", api: "authorizeSecurityGroupIngress", idParam: "securitygroupid", fields: [
        { name: "protocol", label: "Protocol", type: "select", required: true, options: ["tcp", "udp", "icmp", "all"] },
        { name: "startport", label: "Start port", type: "number" },
        { name: "endport", label: "End port", type: "number" },
        { name: "cidrlist", label: "CIDRs", placeholder: "0.0.0.0/0" }] },
      { label: "Delete", api: "deleteSecurityGroup", danger: true, confirm: true },
    ],
  },
  {
    kind: "templates", title: "Templates", list: "listTemplates", params: { templatefilter: "self" },
    columns: ["name", "status", "isready", "format", "hypervisor", "zonename", "ispublic"],
    labels: { isready: "Ready", ispublic: "Public" },
    create: { api: "registerTemplate", label: "Register template", fields: [
      { name: "name", label: "Name", required: true },
      { name: "displaytext", label: "Description", required: true },
      { name: "url", label: "URL", required: true }, zoneSelect,
      { name: "format", label: "Format", type: "select", required: true, options: ["QCOW2", "RAW"] },
      { name: "hypervisor", label: "Hypervisor", type: "select", required: true,
        source: { api: "listHypervisors", value: "name", label: (r) => r.name } },
      { name: "ostypeid", label: "OS type", type: "select", required: true,
        source: { api: "listOsTypes", label: (r) => r.description } }] },
    upload: { api: "getUploadParamsForTemplate", label: "Upload from this computer", upload: true,
      fields: [{ name: "name", label: "Name", required: true },
        { name: "displaytext", label: "Description" }, zoneSelect,
        { name: "format", label: "Format", type: "select", required: true, options: ["QCOW2", "RAW"] },
        { name: "hypervisor", label: "Hypervisor", type: "select", required: true,
          source: { api: "listHypervisors", value: "name", label: (r) => r.name } },
        { name: "ostypeid", label: "OS type", type: "select", required: true,
          source: { api: "listOsTypes", label: (r) => r.description } }, fileField] },
    actions: [{ label: "Delete", api: "deleteTemplate", danger: true, confirm: true }],
  },
  {
    kind: "isos", title: "ISOs", list: "listIsos", params: { isofilter: "self" },
    columns: ["name", "status", "isready", "zonename", "ispublic"],
    create: { api: "registerIso", label: "Register ISO", fields: [
      { name: "name", label: "Name", required: true },
      { name: "displaytext", label: "Description", required: true },
      { name: "url", label: "URL", required: true }, zoneSelect] },
    upload: { api: "getUploadParamsForIso", label: "Upload from this computer", upload: true,
      fields: [{ name: "name", label: "Name", required: true },
        { name: "displaytext", label: "Description" }, zoneSelect, fileField] },
    actions: [{ label: "Delete", api: "deleteIso", danger: true, confirm: true }],
  },
  {
    kind: "sshkeys", title: "SSH key pairs", list: "listSSHKeyPairs", rowKey: "name",
    columns: ["name", "fingerprint", "account"],
    create: { api: "createSSHKeyPair", label: "Create key pair", show: "privatekey",
      fields: [{ name: "name", label: "Name", required: true }] },
    extraCreate: { api: "registerSSHKeyPair", label: "Register public key", fields: [
      { name: "name", label: "Name", required: true },
      { name: "publickey", label: "Public key", type: "textarea", required: true }] },
    actions: [{ label: "Delete", api: "deleteSSHKeyPair", idParam: "name", idField: "name",
      danger: true, confirm: true }],
  },
  {
    kind: "userdata", title: "User data", list: "listUserData",
    columns: ["name", "account", "params"],
    create: { api: "registerUserData", label: "Register user data", fields: [
      { name: "name", label: "Name", required: true },
      { name: "userdata", label: "User data", type: "textarea", required: true, base64: true }] },
    actions: [{ label: "Delete", api: "deleteUserData", danger: true, confirm: true }],
  },
  {
    kind: "affinitygroups", title: "Affinity groups", list: "listAffinityGroups",
    columns: ["name", "type", "description", "account"],
    create: { api: "createAffinityGroup", label: "Create affinity group", fields: [
      { name: "name", label: "Name", required: true },
      { name: "type", label: "Type", type: "select", required: true,
        source: { api: "listAffinityGroupTypes", value: "type", label: (r) => r.type } },
      { name: "description", label: "Description" }] },
    actions: [{ label: "Delete", api: "deleteAffinityGroup", danger: true, confirm: true }],
  },
  {
    kind: "webhooks", title: "Webhooks", list: "listWebhooks",
    columns: ["name", "state", "payloadurl", "scope", "sslverification", "account"],
    labels: { payloadurl: "Payload URL", sslverification: "SSL verification" },
    create: { api: "createWebhook", label: "Create webhook", fields: [
      { name: "name", label: "Name", required: true },
      { name: "payloadurl", label: "Payload URL", required: true, placeholder: "https://…" },
      { name: "description", label: "Description" },
      { name: "secretkey", label: "Secret key (signs X-CS-Signature)", type: "password" },
      { name: "sslverification", label: "Verify TLS certificates", type: "checkbox" }] },
    actions: [
      { label: "Disable", api: "updateWebhook", params: () => ({ state: "Disabled" }),
        when: (r) => r.state === "Enabled" },
      { label: "Enable", api: "updateWebhook", params: () => ({ state: "Enabled" }),
        when: (r) => r.state !== "Enabled" },
      { label: "Delete", api: "deleteWebhook", danger: true, confirm: true },
    ],
  },
  {
    kind: "webhookdeliveries", title: "Webhook deliveries", list: "listWebhookDeliveries",
    columns: ["webhookname", "eventtype", "success", "response", "startdate", "enddate"],
    labels: { webhookname: "Webhook", eventtype: "Event" },
    rowName: (r) => r.id,
    actions: [
      { label: "Send again", api: "executeWebhookDelivery" },
      { label: "Delete", api: "deleteWebhookDelivery", danger: true, confirm: true },
    ],
  },
  {
    kind: "events", title: "Events", list: "listEvents",
    columns: ["created", "type", "level", "description", "username", "state"],
    rowName: (r) => r.id,
  },
  // ---- for operators --------------------------------------------------------------------
  {
    kind: "hosts", title: "Hosts", list: "listHosts", operator: true, needs: ["updateHost"],
    params: { type: "Routing" },
    columns: ["name", "state", "resourcestate", "hypervisor", "clustername", "zonename", "cpuallocated", "memoryallocated"],
    labels: { cpuallocated: "CPU allocated", memoryallocated: "Memory allocated" },
    actions: [
      { label: "Disable", api: "updateHost", params: () => ({ allocationstate: "Disable" }),
        when: (r) => r.resourcestate === "Enabled" },
      { label: "Enable", api: "updateHost", params: () => ({ allocationstate: "Enable" }),
        when: (r) => r.resourcestate === "Disabled" },
      { label: "Maintenance", api: "prepareHostForMaintenance", confirm: true,
        when: (r) => r.resourcestate === "Enabled" },
      { label: "End maintenance", api: "cancelHostMaintenance",
        when: (r) => ["Maintenance", "PrepareForMaintenance", "ErrorInMaintenance"].includes(r.resourcestate) },
    ],
  },
  {
    kind: "zones", needs: ["updateZone"], title: "Zones", list: "listZones", operator: true,
    columns: ["name", "allocationstate", "networktype", "dns1"],
    labels: { allocationstate: "Allocation" },
    actions: [
      { label: "Disable", api: "updateZone", params: () => ({ allocationstate: "Disabled" }),
        when: (r) => r.allocationstate === "Enabled" },
      { label: "Enable", api: "updateZone", params: () => ({ allocationstate: "Enabled" }),
        when: (r) => r.allocationstate !== "Enabled" },
    ],
  },
  {
    kind: "routers", title: "Virtual routers", list: "listRouters", operator: true,
    columns: ["name", "state", "guestnetworkname", "guestipaddress", "publicip", "hostname", "zonename", "account"],
    labels: { guestnetworkname: "Network", guestipaddress: "Guest IP", publicip: "Public IP", hostname: "Host" },
    actions: [
      { label: "Reboot", api: "rebootRouter", confirm: true, when: (r) => r.state === "Running" },
      { label: "Stop", api: "stopRouter", confirm: true, when: (r) => r.state === "Running" },
      { label: "Start", api: "startRouter", when: (r) => r.state === "Stopped" },
      { label: "Destroy", api: "destroyRouter", danger: true, confirm: true },
    ],
  },
  {
    kind: "alerts", title: "Alerts", list: "listAlerts", operator: true, needs: ["archiveAlerts"],
    columns: ["sent", "name", "type", "description"],
    rowName: (r) => r.id,
    actions: [
      { label: "Archive", api: "archiveAlerts", idParam: "ids" },
      { label: "Delete", api: "deleteAlerts", idParam: "ids", danger: true, confirm: true },
    ],
  },
  {
    kind: "rolepermissions", title: "Role permissions", list: "listRolePermissions", operator: true,
    columns: ["rolename", "rule", "permission", "description"],
    labels: { rolename: "Role" },
    rowName: (r) => `${r.rolename}:${r.rule}`,
    create: { api: "createRolePermission", label: "Add rule", fields: [
      { name: "roleid", label: "Role", type: "select", required: true, source: { api: "listRoles" } },
      { name: "rule", label: "API name or pattern (list*)", required: true },
      { name: "permission", label: "Permission", type: "select", required: true, options: ["allow", "deny"] },
      { name: "description", label: "Description" }] },
    actions: [{ label: "Delete", api: "deleteRolePermission", danger: true, confirm: true }],
  },
  { kind: "pods", title: "Pods", list: "listPods", operator: true,
    columns: ["name", "allocationstate", "gateway", "netmask", "zonename"] },
  { kind: "clusters", title: "Clusters", list: "listClusters", operator: true,
    columns: ["name", "allocationstate", "hypervisortype", "podname", "zonename", "cpuovercommitratio", "memoryovercommitratio"] },
  {
    kind: "primarystorage", title: "Primary storage", list: "listStoragePools", operator: true,
    columns: ["name", "state", "scope", "type", "disksizeallocated", "disksizetotal", "clustername", "zonename"],
    actions: [
      { label: "Maintenance", api: "enableStorageMaintenance", when: (r) => r.state === "Up" },
      { label: "End maintenance", api: "cancelStorageMaintenance", when: (r) => r.state === "Maintenance" },
    ],
  },
  { kind: "imagestores", title: "Secondary storage", list: "listImageStores", operator: true,
    columns: ["name", "providername", "protocol", "url", "zonename", "readonly"] },
  { kind: "capacity", title: "Capacity", list: "listCapacity", operator: true,
    columns: ["zonename", "name", "capacityused", "capacitytotal", "percentused"],
    rowName: (r) => `${r.zonename}:${r.type}`,
    decorate: (r) => ({ ...r, name: r.name || `type ${r.type}` }) },
  {
    kind: "accounts", needs: ["createAccount"], title: "Accounts", list: "listAccounts", operator: true,
    columns: ["name", "state", "roletype", "domain", "vmtotal", "volumetotal"],
    create: { api: "createAccount", label: "Create account", fields: [
      { name: "username", label: "User name", required: true },
      { name: "password", label: "Password", type: "password", required: true },
      { name: "email", label: "Email", required: true },
      { name: "firstname", label: "First name", required: true },
      { name: "lastname", label: "Last name", required: true },
      { name: "domainid", label: "Domain", type: "select", source: { api: "listDomains", label: (r) => r.path } },
      { name: "accounttype", label: "Type", type: "select", required: true,
        options: [["0", "User"], ["2", "Domain admin"], ["1", "Root admin"]] }] },
    actions: [
      { label: "Disable", api: "disableAccount", params: () => ({ lock: "false" }),
        when: (r) => r.state === "enabled" },
      { label: "Enable", api: "enableAccount", when: (r) => r.state !== "enabled" },
      { label: "Delete", api: "deleteAccount", danger: true, confirm: true },
    ],
  },
  { kind: "users", needs: ["createUser"], title: "Users", list: "listUsers", operator: true,
    columns: ["username", "state", "account", "domain", "email", "roletype"],
    rowName: (r) => r.username,
    actions: [
      { label: "Disable", api: "disableUser", when: (r) => r.state === "enabled" },
      { label: "Enable", api: "enableUser", when: (r) => r.state !== "enabled" },
    ] },
  { kind: "domains", needs: ["createDomain"], title: "Domains", list: "listDomains", operator: true,
    columns: ["name", "path", "level", "state"],
    create: { api: "createDomain", label: "Create domain", fields: [
      { name: "name", label: "Name", required: true },
      { name: "parentdomainid", label: "Parent", type: "select", source: { api: "listDomains", label: (r) => r.path } }] },
    actions: [{ label: "Delete", api: "deleteDomain", danger: true, confirm: true,
      fields: [{ name: "cleanup", label: "Also delete its accounts and resources", type: "checkbox" }] }] },
  { kind: "roles", needs: ["createRole"], title: "Roles", list: "listRoles", operator: true,
    columns: ["name", "type", "description", "ispublic"] },
  { kind: "settings", title: "Global settings", list: "listConfigurations", operator: true,
    rowKey: "name", rowName: (r) => r.name,
    columns: ["name", "value", "category", "description"],
    actions: [{ label: "Edit", api: "updateConfiguration", idParam: "name", idField: "name",
      fields: [{ name: "value", label: "Value", required: true }] }] },
  { kind: "serviceofferings", needs: ["createServiceOffering"], title: "Compute offerings", list: "listServiceOfferings", operator: true,
    columns: ["name", "cpunumber", "cpuspeed", "memory", "offerha", "hosttags"],
    create: { api: "createServiceOffering", label: "Create offering", fields: [
      { name: "name", label: "Name", required: true },
      { name: "displaytext", label: "Description", required: true },
      { name: "cpunumber", label: "CPUs", type: "number", required: true },
      { name: "cpuspeed", label: "CPU MHz", type: "number", required: true },
      { name: "memory", label: "Memory (MiB)", type: "number", required: true }] },
    actions: [{ label: "Delete", api: "deleteServiceOffering", danger: true, confirm: true }] },
  { kind: "diskofferings", needs: ["createDiskOffering"], title: "Disk offerings", list: "listDiskOfferings", operator: true,
    columns: ["name", "disksize", "iscustomized", "tags"],
    create: { api: "createDiskOffering", label: "Create offering", fields: [
      { name: "name", label: "Name", required: true },
      { name: "displaytext", label: "Description", required: true },
      { name: "disksize", label: "Size (GiB, empty for custom)", type: "number" },
      { name: "customized", label: "Custom size", type: "checkbox" }] },
    actions: [{ label: "Delete", api: "deleteDiskOffering", danger: true, confirm: true }] },
];

export function resource(kind) {
  return resources.find((r) => r.kind === kind);
}
