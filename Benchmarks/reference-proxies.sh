# Sourced by the benchmarks that measure Slipway beside nginx and HAProxy: both configured as competent reverse
# proxies of one app instance (keep-alive to it, one worker or thread) doing the header work Slipway's proxy does
# on every request (X-Forwarded-For, -Proto and -Host, an X-Request-Id kept or made, the release stamped on the
# answer). Each configuration function writes into $scratch. Needs daemon.sh's binary, work and fixture_work_tree.

# deploy_reference_app: the app all three proxy, shop (healthcheck-app); sets instance_pid and instance_port.
deploy_reference_app() {
    "$binary" apps:create shop > /dev/null
    fixture_work_tree healthcheck-app
    git -C "$work" push --quiet "$SLIPWAY_DATA/repos/shop.git" main 2>/dev/null
    read -r instance_pid instance_port < <("$binary" ps shop --json | python3 -c \
        'import json,sys; i=json.load(sys.stdin)[0]; print(i["pid"], i["port"])')
}

# ticks PID...: the user and system CPU clock ticks the processes have used so far.
ticks() { for pid in "$@"; do sed 's/.*) //' "/proc/$pid/stat"; done | awk '{ u += $12; s += $13 } END { print u + 0, s + 0 }'; }

# nginx_config PORT INSTANCE_PORT [LISTEN_OPTIONS] [SERVER_LINES]: $scratch/nginx/nginx.conf.
nginx_config() {
    local port=$1 instance=$2 listen=${3:-} server_lines=${4:-}
    mkdir -p "$scratch/nginx/logs"
    cat > "$scratch/nginx/nginx.conf" <<CONF
worker_processes 1;
daemon off;
error_log $scratch/nginx/logs/error.log warn;
pid $scratch/nginx/nginx.pid;
events { worker_connections 4096; }
http {
    access_log off;
    map \$http_x_request_id \$kept_request_id { default \$http_x_request_id; "" \$request_id; }
    upstream shop { server 127.0.0.1:$instance; keepalive 64; }
    server {
        listen 127.0.0.1:$port$listen;
$server_lines
        location / {
            proxy_pass http://shop;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto \$scheme;
            proxy_set_header X-Forwarded-Host \$host;
            proxy_set_header X-Request-Id \$kept_request_id;
            add_header Slipway-Release v1;
            proxy_buffering off;
        }
    }
}
CONF
}

# haproxy_config PORT INSTANCE_PORT SCHEME [BIND_OPTIONS]: $scratch/haproxy.cfg.
haproxy_config() {
    local port=$1 instance=$2 scheme=$3 bind=${4:-}
    cat > "$scratch/haproxy.cfg" <<CONF
global
    nbthread 1
    maxconn 4096
defaults
    mode http
    option forwardfor
    http-reuse always
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend web
    bind 127.0.0.1:$port$bind
    http-request set-header X-Request-Id %[uuid()] unless { req.hdr(x-request-id) -m found }
    http-request set-header X-Forwarded-Proto $scheme
    http-request set-header X-Forwarded-Host %[req.hdr(host)]
    http-response set-header Slipway-Release v1
    default_backend shop
backend shop
    server instance 127.0.0.1:$instance
CONF
}
