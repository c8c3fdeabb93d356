module github.com/traefik-authkit/floor

go 1.21
