"""Secondary storage: image stores and the templates and ISOs kept in them."""
