module github.com/traefik-authkit/authkit

// 1.21 on purpose: compiled tests then share loop variables the way Traefik's
// interpreter (yaegi v0.16.1) does, so both runs fail alike.
go 1.21
