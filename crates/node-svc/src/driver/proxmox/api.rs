//! Every request the `proxmox` driver makes, in one list the contract test checks against
//! PVE's published API schema.

/// Every request the driver makes: method, path template, parameters. The contract test
/// checks each against PVE's published API schema.
pub const API: &[(&str, &str, &[&str])] = &[
    ("POST", "/access/ticket", &["username", "password"]),
    ("GET", "/nodes/{node}/status", &[]),
    ("GET", "/cluster/nextid", &[]),
    ("GET", "/cluster/resources", &["type"]),
    ("GET", "/nodes/{node}/tasks/{upid}/status", &[]),
    (
        "POST",
        "/nodes/{node}/lxc",
        &[
            "vmid",
            "ostemplate",
            "hostname",
            "cores",
            "memory",
            "rootfs",
            "net0",
            "tags",
            "unprivileged",
            "password",
            "restore",
            "force",
            "storage",
        ],
    ),
    ("POST", "/nodes/{node}/qemu", &["vmid", "archive", "force"]),
    (
        "POST",
        "/nodes/{node}/vzdump",
        &["vmid", "storage", "mode", "compress"],
    ),
    (
        "GET",
        "/nodes/{node}/storage/{storage}/content",
        &["content", "vmid"],
    ),
    (
        "DELETE",
        "/nodes/{node}/storage/{storage}/content/{volume}",
        &[],
    ),
    (
        "POST",
        "/nodes/{node}/qemu/{vmid}/clone",
        &["newid", "name", "full"],
    ),
    ("GET", "/nodes/{node}/lxc/{vmid}/status/current", &[]),
    ("GET", "/nodes/{node}/qemu/{vmid}/status/current", &[]),
    ("POST", "/nodes/{node}/lxc/{vmid}/status/start", &[]),
    ("POST", "/nodes/{node}/qemu/{vmid}/status/start", &[]),
    (
        "POST",
        "/nodes/{node}/lxc/{vmid}/status/shutdown",
        &["timeout", "forceStop"],
    ),
    (
        "POST",
        "/nodes/{node}/qemu/{vmid}/status/shutdown",
        &["timeout", "forceStop"],
    ),
    ("POST", "/nodes/{node}/lxc/{vmid}/status/stop", &[]),
    ("POST", "/nodes/{node}/qemu/{vmid}/status/stop", &[]),
    (
        "POST",
        "/nodes/{node}/lxc/{vmid}/status/reboot",
        &["timeout"],
    ),
    (
        "POST",
        "/nodes/{node}/qemu/{vmid}/status/reboot",
        &["timeout"],
    ),
    ("DELETE", "/nodes/{node}/lxc/{vmid}", &["purge"]),
    ("DELETE", "/nodes/{node}/qemu/{vmid}", &["purge"]),
    (
        "PUT",
        "/nodes/{node}/lxc/{vmid}/config",
        &["cores", "memory", "tags"],
    ),
    (
        "PUT",
        "/nodes/{node}/qemu/{vmid}/config",
        &["cores", "memory", "tags"],
    ),
    ("PUT", "/nodes/{node}/lxc/{vmid}/resize", &["disk", "size"]),
    ("PUT", "/nodes/{node}/qemu/{vmid}/resize", &["disk", "size"]),
    (
        "POST",
        "/nodes/{node}/qemu/{vmid}/agent/set-user-password",
        &["username", "password"],
    ),
    ("GET", "/nodes/{node}/lxc/{vmid}/snapshot", &[]),
    ("GET", "/nodes/{node}/qemu/{vmid}/snapshot", &[]),
    (
        "POST",
        "/nodes/{node}/lxc/{vmid}/snapshot",
        &["snapname", "description"],
    ),
    (
        "POST",
        "/nodes/{node}/qemu/{vmid}/snapshot",
        &["snapname", "description"],
    ),
    (
        "POST",
        "/nodes/{node}/lxc/{vmid}/snapshot/{snapname}/rollback",
        &[],
    ),
    (
        "POST",
        "/nodes/{node}/qemu/{vmid}/snapshot/{snapname}/rollback",
        &[],
    ),
    (
        "DELETE",
        "/nodes/{node}/lxc/{vmid}/snapshot/{snapname}",
        &[],
    ),
    (
        "DELETE",
        "/nodes/{node}/qemu/{vmid}/snapshot/{snapname}",
        &[],
    ),
    ("GET", "/nodes/{node}/lxc/{vmid}/rrddata", &["timeframe"]),
    ("GET", "/nodes/{node}/qemu/{vmid}/rrddata", &["timeframe"]),
    ("POST", "/nodes/{node}/lxc/{vmid}/termproxy", &[]),
    ("POST", "/nodes/{node}/qemu/{vmid}/termproxy", &[]),
    (
        "GET",
        "/nodes/{node}/lxc/{vmid}/vncwebsocket",
        &["port", "vncticket"],
    ),
    (
        "GET",
        "/nodes/{node}/qemu/{vmid}/vncwebsocket",
        &["port", "vncticket"],
    ),
    ("POST", "/nodes/{node}/qemu/{vmid}/vncproxy", &["websocket"]),
];
