module plinth.dev/images/pause

go 1.24
