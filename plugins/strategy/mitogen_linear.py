"""The linear strategy run through Mitogen (pinned in requirements/controller.lock).

Mitogen keeps one Python interpreter per host for the whole run and sends each task to
it, instead of starting a new interpreter and unpacking the module for every task. Task
results and order are those of Ansible's own `linear` strategy. `strategy_plugins` in
ansible.cfg points here, so the path does not depend on where the venv keeps its
packages. To run without it: ANSIBLE_STRATEGY=linear ansible-playbook ...
"""

from ansible_mitogen.plugins.strategy.mitogen_linear import StrategyModule

__all__ = ["StrategyModule"]
