from django.urls import path

from requests_app import views

# Under the kernel's /portal/catalog/ (namespace "portal").
urlpatterns = [
    path("", views.portal_catalog, name="catalog"),
    path("<int:item_id>/", views.portal_catalog_item, name="catalog-item"),
]
