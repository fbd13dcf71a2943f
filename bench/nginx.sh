# Sourced by bench/e2e.sh and bench/pg.sh: nginx on loopback as the targets
# that answer 200 {"ok":true} to everything (Debian nginx-light, its own
# config and folder). Needs NGINX (the binary), free_port and die.
#
#   start_nginx DIR   starts it in DIR, waits until it answers; sets NPORT, NGINX_PID
start_nginx() {
    mkdir -p "$1"
    NPORT=$(free_port)
    cat >"$1/nginx.conf" <<NGX
worker_processes 1;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $1;
    proxy_temp_path $1;
    fastcgi_temp_path $1;
    uwsgi_temp_path $1;
    scgi_temp_path $1;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$NPORT;
        client_body_buffer_size 64k;
        location / { default_type application/json; return 200 '{"ok":true}'; }
    }
}
NGX
    "$NGINX" -c "$1/nginx.conf" -g 'daemon off;' &
    NGINX_PID=$!
    _i=0
    until curl -sf -X POST "http://127.0.0.1:$NPORT/ready" >/dev/null 2>&1; do
        _i=$((_i + 1)); [ $_i -gt 50 ] && die "nginx did not start: $(cat "$1/error.log")"
        sleep 0.1
    done
}
