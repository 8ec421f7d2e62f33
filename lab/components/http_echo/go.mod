module vipadm.lab/http-echo

go 1.24
