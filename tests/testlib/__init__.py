"""What the project's tests share, for tests/, app's deployment checks and every Molecule
scenario: one playbook runner (`playbooks`), the checks' logins and HTTP from the laptop
(`molecule`), the Docker engine (`docker_engine`), and loading plugins and scripts by path
(`plugins`). pyproject.toml puts tests/ on pytest's path, so all of them import it alike."""
