module github.com/traefik-authkit/noop

go 1.21
