module github.com/traefik-authkit/authkit

go 1.21
