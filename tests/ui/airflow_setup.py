"""Set up the UI tests' Airflow before its components start (run as a script with that Airflow's environment):

1. ``airflow db migrate`` (with the FAB auth manager configured, this also creates FAB's tables);
2. two users: ``admin`` (role Admin) and ``reader``, whose role may read one DAG only (Viewer's permissions without
   the all-DAGs one, plus ``can_read`` on that DAG);
3. ``airflow dags reserialize``: the DAGs are in the database before the scheduler starts, so no DAG processor
   needs to run beside it.

One process for all three, through Airflow's own CLI parser and FAB's security manager: every Airflow start costs
seconds here.

    python airflow_setup.py READABLE_DAG_ID
"""

from __future__ import annotations

import sys

PASSWORDS = {"admin": "admin", "reader": "reader"}
READER_ROLE = "one_dag_reader"


def airflow_cli(*argv: str) -> None:
    from airflow.cli.cli_parser import get_parser

    args = get_parser().parse_args(list(argv))
    args.func(args)


def create_users(readable_dag_id: str) -> None:
    from airflow.providers.fab.auth_manager.cli_commands.utils import get_application_builder
    from airflow.providers.fab.www.security import permissions

    with get_application_builder() as appbuilder:
        sm = appbuilder.sm
        sm.add_user("admin", "Ada", "Admin", "admin@example.org", sm.find_role("Admin"), password=PASSWORDS["admin"])
        role = sm.add_role(READER_ROLE)
        for permission in sm.find_role("Viewer").permissions:
            if permission.resource.name != permissions.RESOURCE_DAG:  # "DAGs" means every DAG
                sm.add_permission_to_role(role, permission)
        dag_resource = permissions.resource_name(readable_dag_id, permissions.RESOURCE_DAG)  # "DAG:<dag_id>"
        sm.add_permission_to_role(role, sm.create_permission(permissions.ACTION_CAN_READ, dag_resource))
        sm.add_user("reader", "Rea", "Der", "reader@example.org", role, password=PASSWORDS["reader"])


if __name__ == "__main__":
    airflow_cli("db", "migrate")
    create_users(sys.argv[1])
    airflow_cli("dags", "reserialize")
