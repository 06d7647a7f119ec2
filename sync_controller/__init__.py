"""The Plinth sync controller: keeps a cluster equal to a GitOps repository (see DESIGN.md)."""
