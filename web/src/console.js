// The VM console page (/console/?token=…&path=console/v1?token=…), as createConsoleEndpoint
// hands it out: noVNC speaks RFB over the management server's WebSocket, which the token
// opens once. Nothing else on the page; no credentials needed beyond the token.
import RFB from "@novnc/novnc";
import "./console.css";

const query = new URLSearchParams(location.search);
const status = document.getElementById("status");
const cad = document.getElementById("cad");
const path = query.get("path") || `console/v1?token=${encodeURIComponent(query.get("token") || "")}`;
const scheme = location.protocol === "https:" ? "wss" : "ws";
const url = `${scheme}://${location.host}/${path.replace(/^\//, "")}`;

function say(text, state) {
  status.textContent = text;
  document.body.dataset.state = state;
}

try {
  const rfb = new RFB(document.getElementById("screen"), url, { wsProtocols: ["binary"] });
  rfb.scaleViewport = true;
  rfb.addEventListener("connect", () => {
    say("Connected", "connected");
    cad.disabled = false;
  });
  rfb.addEventListener("disconnect", (e) => {
    say(e.detail.clean ? "Disconnected" : "The console closed (the link may be used or expired)", "disconnected");
    cad.disabled = true;
  });
  rfb.addEventListener("desktopname", (e) => {
    document.title = `${e.detail.name} · Console · Cumulo`;
  });
  cad.addEventListener("click", () => rfb.sendCtrlAltDel());
  window.cumuloRfb = rfb;
} catch (err) {
  say(`Cannot open the console: ${err.message}`, "failed");
}
