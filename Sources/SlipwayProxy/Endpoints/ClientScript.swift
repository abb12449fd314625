// ClientScript: the source of `<prefix>client.js`, the drop-in script that tells a page's user when a newer
// release of the app is live, by a banner or a `slipway:new-version` event. It lives here, not in a resource
// bundle, so the single slipway binary serves it wherever it is installed.
import SlipwayBasics

enum ClientScript {
    /// Changes whenever the script does, so browsers revalidate it cheaply (FNV-1a of the source).
    static let etag = "\"client-\(FNV1a.hex(source))\""

    static let source = #"""
        // Slipway's new-version prompt. Include it once: <script src="/_slipway/client.js" defer></script>
        // Options, as data- attributes on that tag:
        //   data-release="v12"         the release this page came from (default: the page's Server-Timing
        //                              entry "slipway", else the first release the script hears of)
        //   data-message="..."         the banner's text (default "A new version is available")
        //   data-button="..."          the button's text (default "Reload")
        //   data-position="top"        top instead of bottom
        //   data-auto-reload="hidden"  reload by itself while the tab is hidden (once per release, never a loop)
        //   data-banner="off"          no banner: listen for the "slipway:new-version" event on window instead
        // The event's detail is the release ({app, release, version, commit, deployedAt}); calling
        // preventDefault() on it keeps the banner away. The page never reloads unless the user or
        // data-auto-reload asks. window.slipwayNewVersion shows what the script knows, for debugging.
        (function () {
          "use strict";
          var script = document.currentScript;
          if (!script || window.slipwayNewVersion) return;
          var data = script.dataset;
          var base = script.src.replace(/client\.js([?#].*)?$/, "");
          var pageRelease = number(data.release);
          var state = { pageRelease: null, pageReleaseFrom: null, liveRelease: null, transport: null };
          if (pageRelease !== null) {
            state.pageReleaseFrom = "data-release";
          } else if ((pageRelease = fromServerTiming()) !== null) {
            state.pageReleaseFrom = "server-timing";
          }
          state.pageRelease = pageRelease;
          var announced = null;
          window.slipwayNewVersion = state;

          function number(value) {
            var match = /^v?(\d+)$/.exec(String(value || "").trim());
            return match ? Number(match[1]) : null;
          }

          function fromServerTiming() {
            try {
              var navigation = performance.getEntriesByType("navigation")[0];
              var entries = (navigation && navigation.serverTiming) || [];
              for (var i = 0; i < entries.length; i++) {
                if (entries[i].name === "slipway") return number(entries[i].description);
              }
            } catch (ignored) {}
            return null;
          }

          function heard(release) {
            state.liveRelease = release.release;
            if (pageRelease === null) {
              pageRelease = state.pageRelease = release.release;
              state.pageReleaseFrom = "first-heard";
              return;
            }
            if (release.release === pageRelease || release.release === announced) return;
            announced = release.release;
            var event = new CustomEvent("slipway:new-version", { detail: release, cancelable: true });
            if (!window.dispatchEvent(event)) return;
            if (data.autoReload === "hidden") reloadWhenHidden(release);
            if (data.banner !== "off") showBanner(release);
          }

          function reloadWhenHidden(release) {
            var key = "slipway:auto-reloaded-for";
            try {
              if (sessionStorage.getItem(key) === String(release.release)) return;
            } catch (ignored) {}
            function reload() {
              if (document.visibilityState !== "hidden" || announced !== release.release) return;
              document.removeEventListener("visibilitychange", reload);
              try {
                sessionStorage.setItem(key, String(release.release));
              } catch (ignored) {}
              location.reload();
            }
            document.addEventListener("visibilitychange", reload);
            reload();
          }

          function showBanner(release) {
            var old = document.getElementById("slipway-new-version");
            if (old) old.remove();
            var banner = document.createElement("div");
            banner.id = "slipway-new-version";
            banner.setAttribute("role", "status");
            banner.setAttribute("aria-live", "polite");
            banner.setAttribute("data-release", release.version);
            banner.style.cssText =
              "position:fixed;left:50%;transform:translateX(-50%);z-index:2147483647;" +
              (data.position === "top" ? "top:16px;" : "bottom:16px;") +
              "display:flex;gap:12px;align-items:center;max-width:calc(100% - 32px);box-sizing:border-box;" +
              "padding:10px 10px 10px 16px;border-radius:8px;background:#1f2937;color:#f9fafb;" +
              "font:14px/1.4 system-ui,sans-serif;box-shadow:0 4px 16px rgba(0,0,0,.25)";
            var text = document.createElement("span");
            text.textContent = data.message || "A new version is available";
            var reload = button(data.button || "Reload", "Reload the page to get the new version");
            reload.style.cssText +=
              "font-weight:600;padding:4px 12px;border-radius:6px;background:#f9fafb;color:#1f2937";
            reload.addEventListener("click", function () {
              location.reload();
            });
            var dismiss = button("\u00d7", "Dismiss");
            dismiss.style.cssText += "font-size:18px;padding:0 6px;background:none;color:inherit";
            dismiss.addEventListener("click", function () {
              banner.remove();
            });
            banner.append(text, reload, dismiss);
            (document.body || document.documentElement).appendChild(banner);
          }

          function button(label, description) {
            var element = document.createElement("button");
            element.type = "button";
            element.textContent = label;
            element.title = description;
            element.setAttribute("aria-label", description);
            element.style.cssText = "font:inherit;line-height:1.4;border:0;cursor:pointer;";
            return element;
          }

          function listen() {
            if (!window.EventSource) return poll();
            state.transport = "events";
            var source = new EventSource(base + "events");
            var opened = false;
            var failures = 0;
            source.addEventListener("open", function () {
              opened = true;
            });
            source.addEventListener("release", function (event) {
              heard(JSON.parse(event.data));
            });
            source.addEventListener("error", function () {
              // EventSource reconnects by itself (with Last-Event-ID) once it had a stream; a stream
              // that never opens (a buffering proxy in between) or was refused falls back to long polls.
              if (source.readyState === EventSource.CLOSED || (!opened && ++failures >= 2)) {
                source.close();
                poll();
              }
            });
          }

          function poll() {
            state.transport = "long-poll";
            var etag = null;
            var delay = 1000;
            function next() {
              var headers = etag ? { "If-None-Match": etag } : {};
              fetch(base + "version" + (etag ? "?wait=55" : ""), { headers: headers, cache: "no-store" })
                .then(function (response) {
                  if (response.status === 304) return null;
                  if (!response.ok) throw new Error("version endpoint answered " + response.status);
                  etag = response.headers.get("ETag");
                  return response.json();
                })
                .then(function (release) {
                  delay = 1000;
                  if (release) heard(release);
                  setTimeout(next, 0);
                })
                .catch(function () {
                  setTimeout(next, delay);
                  delay = Math.min(delay * 2, 60000);
                });
            }
            next();
          }

          listen();
        })();

        """#
}
