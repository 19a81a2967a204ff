@echo off
rem Windows shim for the fake trivy (tests/fakes/trivy is a Python script).
python "%~dp0trivy" %*
