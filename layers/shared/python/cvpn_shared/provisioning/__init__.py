"""Provisioning: endpoints owned by administrators. The request model, the steps of the provision and
decommission workflows (validate, create, associate, authorize, route, export, record, tear down),
and their data access."""
