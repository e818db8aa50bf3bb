"""The linear strategy run through Mitogen (pinned in requirements/controller.lock).

Mitogen keeps one Python interpreter per host for the whole run and sends each task to
it, instead of starting a new interpreter and unpacking the module for every task. Task
results and order are those of Ansible's own `linear` strategy. `strategy_plugins` in
ansible.cfg points here, so the path does not depend on where the venv keeps its
packages. To run without it: ANSIBLE_STRATEGY=linear ansible-playbook ...
"""

import ansible_mitogen.strategy
from ansible_mitogen.plugins.strategy.mitogen_linear import StrategyModule

# Tasks on the controller itself (Molecule's create and destroy plays, delegate_to:
# localhost) keep Ansible's own local connection: under Mitogen, an async
# community.docker.docker_container task never finishes (mitogen-hq/mitogen#835), and
# Molecule creates its containers that way. There are few such tasks in site.yml.
ansible_mitogen.strategy.REDIRECTED_CONNECTION_PLUGINS = tuple(
    name for name in ansible_mitogen.strategy.REDIRECTED_CONNECTION_PLUGINS if name != "local"
)

__all__ = ["StrategyModule"]
