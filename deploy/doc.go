// Package deploy holds no code: its tests check the install files of this
// directory (the Helm chart, the NATS configuration) and of the repository
// root (docker-compose.yml, the Dockerfile) against the real tools: Helm as
// a library, a kube-apiserver with the Agones CRDs, kwok nodes, compose-go
// and shellcheck. The helpers are in deploytest.
package deploy
